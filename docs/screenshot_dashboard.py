"""Take docs/dashboard_trial.png: a trial page of optuna-dashboard showing its sample grid.

Runs a small digits-demo study (embedded store in a temporary folder, trials run in this
process through the workers' code path), starts ``autonat-search dashboard`` on a free port,
screenshots the best trial's page with headless Chromium (Debian's ``chromium``), and checks
that the screenshot contains the trial's sample grid, pixel for pixel, by template matching
against the grid PNG the dashboard serves. Exit code 1 if the grid is not found.

    python docs/screenshot_dashboard.py [--trials 3] [--output docs/dashboard_trial.png]
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    "--window-size=1400,1000",
    "--virtual-time-budget=15000",
]


def run_small_study(folder: Path, trials: int) -> str:
    """A digits-demo study of ``trials`` trials in ``folder``; returns its storage URL."""
    from autonat_search.config import load_study_config
    from autonat_search.execution.trial_loop import WorkerOptions, run_study_trials
    from autonat_search.storage import open_storage
    from autonat_search.study import start_study
    from nat_core.pipeline import load_bundle

    data = yaml.safe_load((ROOT / "studies" / "digits_demo.yaml").read_text())
    data["bundle"] = str(ROOT / "bundles" / "digits_demo.yaml")
    data["budget"] = {"n_trials": trials}
    data["artifacts"] = {"store": "artifacts/"}  # in this run's folder
    study_file = folder / "digits_demo.yaml"
    study_file.write_text(yaml.safe_dump(data))
    config = load_study_config(study_file)
    url = f"sqlite:///{folder / 'studies.db'}"
    start_study(config, open_storage(url))
    bundle = load_bundle(config.bundle_path())
    options = WorkerOptions(storage_url=url, study_name=config.name)
    run_study_trials(bundle, options, device_name="cpu", stop=threading.Event())
    return url


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.read()


def start_dashboard(url: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "autonat_search.cli", "dashboard", "--storage", url, "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert process.stdout is not None
    for line in process.stdout:
        print(f"  dashboard: {line.strip()}")
        if line.startswith("open http://"):
            base = line.split()[1].removesuffix("/dashboard")
            for _ in range(300):
                try:
                    get(base + "/api/meta")
                    return process, base
                except OSError:
                    time.sleep(0.2)
    process.terminate()
    raise SystemExit("the dashboard did not start")


def best_trial_grid(base: str) -> tuple[int, int, Image.Image]:
    """(study id, trial number, the trial's sample grid as served) of the best trial."""
    study_id = json.loads(get(base + "/api/studies"))["study_summaries"][0]["study_id"]
    detail = json.loads(get(f"{base}/api/studies/{study_id}"))
    trial = detail["best_trials"][0]
    artifact = next(a for a in trial["artifacts"] if a["filename"] == "sample_grid.png")
    png = get(f"{base}/artifacts/{study_id}/{trial['trial_id']}/{artifact['artifact_id']}")
    return study_id, trial["number"], Image.open(io.BytesIO(png)).convert("RGB")


def find_template(screen: np.ndarray, template: np.ndarray) -> tuple[int, int, float] | None:
    """Top-left (y, x) and mean absolute difference of the best match of ``template`` in
    ``screen`` (both int arrays, H x W x 3), among places whose corners match; None if none."""
    h, w = template.shape[:2]
    corner = np.abs(screen[: -h + 1 or None, : -w + 1 or None] - template[0, 0]).max(axis=2) <= 3
    far = np.abs(screen[h - 1 :, w - 1 :] - template[-1, -1]).max(axis=2) <= 3
    candidates = np.argwhere(corner & far[: corner.shape[0], : corner.shape[1]])
    best = None
    for y, x in candidates:
        difference = float(np.abs(screen[y : y + h, x : x + w] - template).mean())
        if best is None or difference < best[2]:
            best = (int(y), int(x), difference)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "dashboard_trial.png")
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("chromium not found: apt-get install -y chromium")
    with tempfile.TemporaryDirectory(prefix="autonat-screenshot-") as name:
        folder = Path(name)
        started = time.perf_counter()
        url = run_small_study(folder, args.trials)
        print(f"study of {args.trials} trials in {time.perf_counter() - started:.0f} s")
        process, base = start_dashboard(url)
        try:
            study_id, number, grid = best_trial_grid(base)
            page = f"{base}/dashboard/studies/{study_id}/trials?numbers={number}"
            shot = folder / "shot.png"
            subprocess.run(
                [
                    chromium,
                    *CHROMIUM_FLAGS,
                    f"--user-data-dir={folder / 'chromium'}",
                    f"--screenshot={shot}",
                    page,
                ],
                check=True,
                capture_output=True,
                timeout=180,
            )
        finally:
            process.terminate()
            process.wait(timeout=30)
        screen = np.asarray(Image.open(shot).convert("RGB"), dtype=np.int16)
        match = find_template(screen, np.asarray(grid, dtype=np.int16))
        if match is None or match[2] > 2.0:
            print(f"the sample grid ({grid.width}x{grid.height}) is not in the screenshot: {match}")
            return 1
        args.output.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, args.output)
        y, x, difference = match
        print(
            f"{page}: sample grid {grid.width}x{grid.height} found at x={x}, y={y} "
            f"(mean difference {difference:.2f}/255) -> {args.output}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
