"""deploy/slurm/autonat_search.sbatch: its commands are real, secrets stay off command lines,
and the whole job runs here on one "node" (srun and scontrol replaced by small stand-ins):
a real Ray head with token authentication, the wait for the nodes, one real worker that runs
a small digits study on PostgreSQL to its budget, then Ray is stopped."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import optuna
import pytest
from cli_invocations import REPO, check_invocation, invocations_in_text

from autonat_search.storage import open_storage

SBATCH = REPO / "deploy" / "slurm" / "autonat_search.sbatch"
STUDY = """\
name: sbatch-smoke
bundle: {bundle}
steps: 8
space:
  kind: per-step
  ranges:
    {{mask_ratio: [0.0, 1.0], remask_temp: [0.0, 4.0], sample_temp: [0.0, 2.0], cfg: [0.0, 3.0]}}
sampler: {{name: random, seed: 0}}
fidelity: {{rungs: [50, 100], pruner: none}}
budget: {{n_trials: 3}}
samples: {{seed: 0, chunk: 50, batch_size: 50, labels: balanced}}
device: {{kind: cpu, precision: fp32}}
warm_start: [reference-initial]
"""
# Stand-ins: this host is the whole allocation; srun runs its command here.
SCONTROL = '#!/bin/bash\n[ "$1 $2" = "show hostnames" ] && hostname\n'
SRUN = """#!/bin/bash
while [ $# -gt 0 ]; do
  case "$1" in -w) shift 2 ;; -*) shift ;; *) break ;; esac
done
exec "$@"
"""


def test_script_is_valid_bash():
    result = subprocess.run(["bash", "-n", str(SBATCH)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_commands_are_real(autonat_cli, ray_cli):
    found = list(invocations_in_text(SBATCH.read_text(), SBATCH.name))
    problems = [p for inv in found for p in check_invocation(inv, autonat_cli, ray_cli)]
    assert not problems, "; ".join(problems)
    commands = {(inv.program, inv.subcommand) for inv in found}
    assert {("ray", "start"), ("autonat-search", "worker"), ("autonat-search", "start-study")} <= (
        commands
    )


def test_secrets_come_from_files_and_the_environment():
    text = SBATCH.read_text()
    assert "export RAY_AUTH_MODE=token" in text
    assert "RAY_AUTH_TOKEN_PATH" in text
    code = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in code if re.search(r"--storage|RAY_AUTH_TOKEN=|PASSWORD", line)]
    assert ".pgpass" in text  # where the database password lives


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.ray  # the batch script's Ray head and worker
def test_job_runs_a_study_to_its_budget(tmp_path, postgres_url, request):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("scontrol", SCONTROL), ("srun", SRUN)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    token = tmp_path / "ray_auth_token"
    token.write_text(os.urandom(16).hex())
    token.chmod(0o600)
    study_file = tmp_path / "study.yaml"
    study_file.write_text(STUDY.format(bundle=REPO / "bundles" / "digits_demo.yaml"))
    # A Ray of its own, invisible to other tests' ray.init(); a short path, because Ray's
    # socket paths under it must stay within 107 bytes.
    ray_tmp = Path(tempfile.mkdtemp(prefix="sbatch-ray-", dir="/tmp"))
    request.addfinalizer(lambda: shutil.rmtree(ray_tmp, ignore_errors=True))
    venv = Path(sys.executable).parent.parent
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "PYTHONPATH": str(REPO),
        "AUTONAT_VENV": str(venv),
        "AUTONAT_STORAGE": postgres_url,
        "STUDY": "sbatch-smoke",
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

    job = subprocess.run(
        ["bash", str(SBATCH)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    output = job.stdout + job.stderr
    assert job.returncode == 0, output[-4000:]
    assert "1 Ray node(s) up" in output
    assert "actor 0: started 3, COMPLETE 3" in output
    study = optuna.load_study(study_name="sbatch-smoke", storage=open_storage(postgres_url))
    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert states == [optuna.trial.TrialState.COMPLETE] * 3
    assert token.read_text() not in output  # the token never shows
    leftovers = subprocess.run(["pgrep", "-f", str(ray_tmp)], capture_output=True, text=True)
    pids = leftovers.stdout.split()
    for pid in pids:  # processes of this test's own Ray (its unique folder is in their args)
        subprocess.run(["kill", "-TERM", pid], capture_output=True)
    assert not pids, f"the job left Ray processes running: {pids}"
