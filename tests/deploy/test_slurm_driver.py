"""deploy/slurm/autonat_search.sbatch with AUTONAT_MODE=driver: one `worker --all-nodes` for the
allocation, run here on one "node" with the stand-ins of test_slurm.py (a real Ray head with
token authentication, a small digits study on PostgreSQL run to its budget)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import optuna
import pytest
from cli_invocations import REPO
from test_slurm import SBATCH, SCONTROL, SRUN, STUDY, free_port

from autonat_search.storage import open_storage


@pytest.mark.slow
@pytest.mark.ray  # the batch script's Ray cluster
def test_driver_mode_places_actors_on_every_node_and_meets_the_budget(
    tmp_path, postgres_url, request
):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("scontrol", SCONTROL), ("srun", SRUN)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    token = tmp_path / "ray_auth_token"
    token.write_text(os.urandom(16).hex())
    token.chmod(0o600)
    study_file = tmp_path / "study.yaml"
    study_file.write_text(
        STUDY.format(bundle=REPO / "bundles" / "digits_demo.yaml").replace(
            "name: sbatch-smoke", "name: sbatch-driver"
        )
    )
    ray_tmp = Path(tempfile.mkdtemp(prefix="sbatch-ray-", dir="/tmp"))
    request.addfinalizer(lambda: shutil.rmtree(ray_tmp, ignore_errors=True))
    venv = Path(sys.executable).parent.parent
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "PYTHONPATH": str(REPO),
        "AUTONAT_VENV": str(venv),
        "AUTONAT_STORAGE": postgres_url,
        "STUDY": "sbatch-driver",
        "AUTONAT_MODE": "driver",
        "AUTONAT_WORKER_ARGS": "--cpu-actors 1",
        "RAY_AUTH_TOKEN_PATH": str(token),
        "RAY_TMPDIR": str(ray_tmp),
        "RAY_PORT": str(free_port()),
        "SLURM_JOB_NODELIST": "stand-in",
    }
    env.pop("RAY_ADDRESS", None)
    env.pop("RAY_AUTH_TOKEN", None)
    start = subprocess.run(
        [str(venv / "bin" / "autonat-search"), "start-study", str(study_file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert start.returncode == 0, start.stderr
    try:
        job = subprocess.run(
            ["bash", str(SBATCH)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
        )
    finally:
        leftovers = subprocess.run(["pgrep", "-f", str(ray_tmp)], capture_output=True, text=True)
        for pid in leftovers.stdout.split():  # only this test's own Ray (its folder in the args)
            subprocess.run(["kill", "-TERM", pid], capture_output=True)
    output = job.stdout + job.stderr
    assert job.returncode == 0, output[-4000:]
    assert "mode driver" in output
    assert "1 actor(s) placed" in output  # the driver's placement on the one node
    assert "actor 0: started 3, COMPLETE 3" in output
    study = optuna.load_study(study_name="sbatch-driver", storage=open_storage(postgres_url))
    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert states == [optuna.trial.TrialState.COMPLETE] * 3
    assert token.read_text() not in output
    assert not leftovers.stdout.split(), "the job left Ray processes running"
