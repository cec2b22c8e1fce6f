"""The command line as a user meets it: real processes, one-line errors, exit codes."""

import subprocess
import sys
import uuid

import pytest
import yaml


def _cli(*args, env_storage=None, cwd=None):
    import os

    env = dict(os.environ)
    env.pop("AUTONAT_STORAGE", None)
    if env_storage:
        env["AUTONAT_STORAGE"] = env_storage
    return subprocess.run(
        [sys.executable, "-m", "autonat_search.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def _study_file(tmp_path, bundle, **changes):
    data = {
        "name": f"cli-{uuid.uuid4().hex[:8]}",
        "bundle": str(bundle),
        "steps": 4,
        "budget": {"n_trials": 3},
        "sampler": {"name": "random", "seed": 0},
        "fidelity": {"rungs": [40, 80], "pruner": "none"},
        "samples": {"chunk": 20, "batch_size": 40},
        "device": {"kind": "cpu", "precision": "fp32"},
    }
    data.update(changes)
    path = tmp_path / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path, data["name"]


def test_bad_study_file_is_one_line_naming_file_and_key(tmp_path, quick_digits_bundle):
    path, _ = _study_file(tmp_path, quick_digits_bundle, fidelity={"rungs": [40, 70]})
    db = f"sqlite:///{tmp_path / 's.db'}"
    result = _cli("start-study", str(path), "--storage", db)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert str(path) in lines[0] and "fidelity.rungs[1] = 70 is not a multiple" in lines[0]
    assert not (tmp_path / "s.db").exists()  # nothing written


def test_usage_errors_are_shown_without_a_traceback():
    missing = _cli("status")
    assert missing.returncode == 2
    assert "Missing option '--study'" in missing.stderr and "Traceback" not in missing.stderr
    bad = _cli("evaluate", "--bundle", "b.yaml", "--strategy", "s.yaml", "--n", "many")
    assert bad.returncode == 2
    assert "--n" in bad.stderr and "Traceback" not in bad.stderr


def test_password_never_appears(tmp_path, quick_digits_bundle):
    path, _ = _study_file(tmp_path, quick_digits_bundle)
    url = "postgresql+psycopg2://postgres:s3cr3t-pw@127.0.0.1:5999/none"
    result = _cli("start-study", str(path), env_storage=url)
    assert result.returncode == 1
    assert "s3cr3t-pw" not in result.stderr + result.stdout
    assert "***" in result.stderr


@pytest.mark.ray  # the worker subprocess
def test_start_study_status_and_exports_through_the_cli(
    tmp_path, quick_digits_bundle, postgres_url
):
    path, name = _study_file(tmp_path, quick_digits_bundle)
    first = _cli("start-study", str(path), env_storage=postgres_url)
    assert first.returncode == 0, first.stderr
    assert f"created study {name!r}" in first.stdout
    assert "reference-initial: enqueued exactly" in first.stdout
    again = _cli("start-study", str(path), env_storage=postgres_url)
    assert "nothing to do" in again.stdout

    worker = _cli("worker", "--study", name, "--cpu-actors", "1", env_storage=postgres_url)
    assert worker.returncode == 0, worker.stderr
    # Progress: the actor's lines reach the worker's terminal through Ray, a few per trial.
    assert "trial 0 started on cpu" in worker.stderr
    assert "trial 0: FID@40 = " in worker.stderr and "images/s)" in worker.stderr
    assert "trial 0 COMPLETE: FID " in worker.stderr
    assert worker.stderr.count(" started on ") == 3
    status = _cli("status", "--study", name, env_storage=postgres_url)
    assert "3 of 3 trials finished" in status.stdout
    assert "best: FID@80" in status.stdout

    out = tmp_path / "best.yaml"
    export = _cli("export-best-strategy", "--study", name, "-o", str(out), env_storage=postgres_url)
    assert export.returncode == 0, export.stderr
    assert sorted(yaml.safe_load(out.read_text())) == [
        "manual_cfg",
        "manual_ratios",
        "manual_samp_temp",
        "manual_temp",
    ]
    csv_out = tmp_path / "trials.csv"
    trials = _cli("export-trials", "--study", name, "-o", str(csv_out), env_storage=postgres_url)
    assert trials.returncode == 0 and len(csv_out.read_text().splitlines()) == 4

    missing = _cli("status", "--study", "nope", env_storage=postgres_url)
    assert missing.returncode == 1 and "no study named 'nope'" in missing.stderr


@pytest.mark.ray  # the worker subprocess
def test_sigterm_finishes_running_trials_and_starts_no_new_ones(tmp_path, quick_digits_bundle):
    import os
    import signal
    import time

    import optuna
    from optuna.trial import TrialState

    from autonat_search.storage import open_storage

    path, name = _study_file(tmp_path, quick_digits_bundle, budget={"n_trials": 10_000})
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert _cli("start-study", str(path), "--storage", url).returncode == 0
    env = dict(os.environ, AUTONAT_STORAGE=url)
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "autonat_search.cli",
            "worker",
            "--study",
            name,
            "--cpu-actors",
            "1",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    storage = open_storage(url)
    study = optuna.load_study(study_name=name, storage=storage)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        states = [t.state for t in study.get_trials(deepcopy=False)]
        if states.count(TrialState.COMPLETE) >= 2:
            break
        time.sleep(0.5)
    else:
        worker.kill()
        pytest.fail("the worker finished no trial in time")
    worker.send_signal(signal.SIGTERM)
    _, err = worker.communicate(timeout=120)
    assert worker.returncode == 0, err
    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert TrialState.RUNNING not in states
    assert TrialState.COMPLETE in states and len(states) < 10_000
