"""``autonat-search dashboard`` as a process: optuna-dashboard serving a PostgreSQL study, its
trial notes and sample grids, read back over its HTTP API."""

import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
import yaml
from PIL import Image

from autonat_search.config import load_study_config
from autonat_search.execution.artifact_images import GRID_PAD, grid_shape
from autonat_search.execution.trial_artifacts import GRID_FILE, SCHEDULES_FILE
from autonat_search.execution.trial_loop import WorkerOptions, run_study_trials
from autonat_search.storage import open_storage
from autonat_search.study import start_study
from nat_core.pipeline import load_bundle


def _environment():
    env = dict(os.environ)
    env.pop("AUTONAT_STORAGE", None)
    return env


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.read()


def _start_dashboard(*args):
    process = subprocess.Popen(
        [sys.executable, "-m", "autonat_search.cli", "dashboard", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_environment(),
    )
    lines = []
    for line in process.stdout:
        lines.append(line.strip())
        if line.startswith("open http://"):
            return process, line.split()[1], lines
    process.wait(timeout=30)
    raise AssertionError(f"no URL printed: {lines} {process.stderr.read()}")


def _wait_until_serving(base: str) -> None:
    for _ in range(300):
        try:
            _get(base + "/api/meta")
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{base} never answered")


@pytest.mark.slow
def test_dashboard_serves_the_study_its_trial_notes_and_sample_grids(
    postgres_url, quick_digits_bundle, tmp_path
):
    study_file = tmp_path / "study.yaml"
    study_file.write_text(
        yaml.safe_dump(
            {
                "name": "dashboard-http",
                "bundle": str(quick_digits_bundle),
                "steps": 4,
                "budget": {"n_trials": 3},
                "sampler": {"name": "random", "seed": 1},
                "fidelity": {"rungs": [40, 80], "pruner": "none"},
                "samples": {"chunk": 20, "batch_size": 40},
                "device": {"kind": "cpu", "precision": "fp32"},
            }
        )
    )
    config = load_study_config(study_file)
    start_study(config, open_storage(postgres_url))
    bundle = load_bundle(quick_digits_bundle)
    # The actors' code path, in this process: the objective writes notes and artifacts.
    summary = run_study_trials(
        bundle,
        WorkerOptions(storage_url=postgres_url, study_name=config.name),
        device_name="cpu",
        stop=threading.Event(),
    )
    assert summary.states == {"COMPLETE": 3}
    assert (tmp_path / "artifacts").is_dir()  # the default store, next to the study file

    process, url, lines = _start_dashboard("--storage", postgres_url)
    try:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/dashboard")
        assert lines[1].startswith("artifacts: ") and str(tmp_path / "artifacts") in lines[1]
        base = url.removesuffix("/dashboard")
        _wait_until_serving(base)
        studies = json.loads(_get(base + "/api/studies"))["study_summaries"]
        study_id = next(s["study_id"] for s in studies if s["study_name"] == config.name)
        detail = json.loads(_get(f"{base}/api/studies/{study_id}"))
        assert detail["objective_names"] == ["FID@80"]
        assert "objective FID@80" in detail["note"]["body"]
        assert "| rungs | 40, 80 samples (none) |" in detail["note"]["body"]
        trial = detail["trials"][-1]
        assert trial["state"] == "Complete"
        assert f"### Trial {trial['number']}: complete, FID@80 = " in trial["note"]["body"]
        assert "| step | mask ratio | re-mask temp | sample temp | cfg |" in trial["note"]["body"]
        attrs = {a["key"]: a["value"] for a in trial["user_attrs"]}
        assert {"mask_ratio_1", "remask_temp_3", "sample_temp_4", "cfg_4"} <= set(attrs)
        files = {a["filename"]: a["artifact_id"] for a in trial["artifacts"]}
        assert set(files) == {GRID_FILE, SCHEDULES_FILE}
        png = _get(f"{base}/artifacts/{study_id}/{trial['trial_id']}/{files[GRID_FILE]}")
        grid = Image.open(io.BytesIO(png))
        rows, columns = grid_shape(10)  # one image per digit class, 8x8 shown at 64x64
        assert grid.format == "PNG"
        assert grid.size == (
            columns * (64 + GRID_PAD) + GRID_PAD,
            rows * (64 + GRID_PAD) + GRID_PAD,
        )
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_dashboard_on_a_missing_embedded_store_says_so_and_creates_nothing(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "autonat_search.cli", "dashboard", "--port", "0"],
        capture_output=True,
        text=True,
        env=_environment(),
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == ["error: no store at autonat-search.db: nothing to show (give --storage URL)"]
    assert list(tmp_path.iterdir()) == []


def test_dashboard_on_a_busy_port_is_one_line(tmp_path):
    database = tmp_path / "s.db"
    open_storage(f"sqlite:///{database}")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "autonat_search.cli",
                "dashboard",
                "--storage",
                f"sqlite:///{database}",
                "--port",
                str(port),
            ],
            capture_output=True,
            text=True,
            env=_environment(),
            timeout=120,
        )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]
