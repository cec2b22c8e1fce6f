"""The embedded default job, in a reduced run: a real study, real Ray actors, real files."""

import math
import shlex
import subprocess
import sys

import optuna
import yaml
from optuna.trial import TrialState

from autonat_search.demo import run_demo


def test_reduced_demo_runs_end_to_end(ray_session, tmp_path):
    lines: list[str] = []
    result = run_demo(out=tmp_path, trials=4, cpu_actors=2, echo=lines.append)
    assert math.isfinite(result["initial"]) and math.isfinite(result["best"])
    (run_dir,) = tmp_path.glob("demo-*")
    exported = yaml.safe_load((run_dir / "best_strategy.yaml").read_text())
    assert sorted(exported) == ["manual_cfg", "manual_ratios", "manual_samp_temp", "manual_temp"]
    text = "\n".join(lines)
    assert "4 of 4 trials finished" in text
    assert "reference initial schedule: FID@1000" in text
    study = optuna.load_study(
        study_name="digits-demo", storage=f"sqlite:///{run_dir / 'studies.db'}"
    )
    complete = sum(t.state == TrialState.COMPLETE for t in study.trials)
    # Every finished trial's sample grid and schedule plot, in the run's own folder.
    assert len(list((run_dir / "artifacts").iterdir())) == 2 * 4
    # The (up to) 3 best complete trials, the initial schedule among them or added.
    assert text.count("re-evaluated (seed 1)") in (min(3, complete), min(3, complete) + 1)
    assert "% lower on fresh samples" in text
    # The hint of the last line is a command that works.
    hint = lines[-1].split("inspect with: ")[1]
    command = shlex.split(hint)
    assert command[0] == "autonat-search"
    shown = subprocess.run(
        [sys.executable, "-m", "autonat_search.cli", *command[1:]],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    assert "4 of 4 trials finished" in shown.stdout
