"""A planted database password never reaches a printed line, a written file or the study: it
comes from the environment (AUTONAT_STORAGE) or a file (AUTONAT_STORAGE_FILE), and a
``--storage`` URL with a password on the command line is refused. (The local PostgreSQL
trusts local connections, so any password is accepted: the URLs below really connect.)"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import optuna
import pytest
import yaml
from sqlalchemy.engine import make_url

from autonat_search.storage import open_storage

REPO = Path(__file__).resolve().parents[3]
DIGITS_BUNDLE = REPO / "autonat_search" / "demo_data" / "bundles" / "digits_demo.yaml"
PASSWORD = f"planted-{uuid.uuid4().hex}"
URL_WITH_PASSWORD = re.compile(r"://[A-Za-z0-9._%-]+:[^/@\s]+@")  # user:password@


def _cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AUTONAT_STORAGE")}
    return subprocess.run(
        [sys.executable, "-m", "autonat_search.cli", "--verbose", *args],
        capture_output=True,
        text=True,
        env={**environment, **env},
        cwd=cwd,
        timeout=600,
    )


def _dashboard_output(cwd: Path, env: dict[str, str], study_name: str) -> str:
    """What ``dashboard`` prints while serving the study (read once over HTTP) and stopping."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AUTONAT_STORAGE")}
    process = subprocess.Popen(
        [sys.executable, "-m", "autonat_search.cli", "--verbose", "dashboard", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**environment, **env},
        cwd=cwd,
    )
    assert process.stdout is not None
    lines = []
    try:
        for line in process.stdout:
            lines.append(line)
            address = re.search(r"(http://\S+)/dashboard", line)
            if address:
                with urllib.request.urlopen(f"{address.group(1)}/api/studies", timeout=60) as r:
                    assert study_name in r.read().decode()
                break
        assert address, "".join(lines)
    finally:
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    return "".join(lines) + rest


@pytest.mark.slow
@pytest.mark.ray  # the worker subprocess
def test_a_planted_password_is_never_printed_written_or_stored(tmp_path, postgres_url):
    url = make_url(postgres_url).set(password=PASSWORD).render_as_string(hide_password=False)
    url_file = tmp_path / "storage_url"
    url_file.write_text(url + "\n")
    from_file = {"AUTONAT_STORAGE_FILE": str(url_file)}
    from_env = {"AUTONAT_STORAGE": url}
    name = f"secret-{uuid.uuid4().hex[:8]}"
    study_file = tmp_path / "study.yaml"
    study_file.write_text(
        yaml.safe_dump(
            {
                "name": name,
                "bundle": str(DIGITS_BUNDLE),
                "steps": 4,
                "budget": {"n_trials": 2},
                "sampler": {"name": "random", "seed": 0},
                "fidelity": {"rungs": [40, 80], "pruner": "none"},
                "samples": {"chunk": 20, "batch_size": 40},
                "device": {"kind": "cpu", "precision": "fp32"},
            }
        )
    )
    best, trials = tmp_path / "best.yaml", tmp_path / "trials.csv"
    runs = [
        (["start-study", str(study_file)], from_file, 0),
        (["worker", "--study", name, "--cpu-actors", "1"], from_file, 0),
        (["status", "--study", name], from_env, 0),
        (["status", "--study", name, "--json"], from_file, 0),
        (["export-trials", "--study", name, "-o", str(trials)], from_env, 0),
        (["export-best-strategy", "--study", name, "-o", str(best)], from_file, 0),
        (["--debug", "status", "--study", "no-such-study"], from_env, 1),  # a traceback
        (["status", "--study", name, "--storage", url], {}, 2),  # refused
    ]
    printed = []
    for args, env, expected in runs:
        result = _cli(*args, cwd=tmp_path, **env)
        assert result.returncode == expected, (args, result.stdout, result.stderr)
        printed.append((args, result.stdout + result.stderr))
    printed.append((["dashboard"], _dashboard_output(tmp_path, from_env, name)))
    for args, text in printed:
        assert PASSWORD not in text, args
    assert "2 of 2 trials finished" in printed[2][1]
    assert "***" in printed[6][1]  # the URL is shown redacted
    assert "must not be on a command line" in printed[7][1]

    for written in (best, trials):
        assert PASSWORD not in written.read_text()
    study = optuna.load_study(study_name=name, storage=open_storage(url))
    stored = json.dumps(
        [study.user_attrs] + [[t.user_attrs, t.system_attrs] for t in study.get_trials()],
        default=str,
    )
    assert PASSWORD not in stored


def test_the_compose_files_carry_no_password():
    """The deployment files name secrets by variable only (tests/deploy renders them with a
    planted .env and checks where the values land)."""
    files = [REPO / "docker-compose.yml", *sorted((REPO / "docker").glob("compose.*.yml"))]
    files += [REPO / "deploy" / "slurm" / "autonat_search.sbatch", REPO / "docker" / "env.example"]
    for path in files:
        text = path.read_text()
        assert not URL_WITH_PASSWORD.search(text), path
        assert PASSWORD not in text
        for line in text.splitlines():
            if re.match(r"\s*(POSTGRES_PASSWORD|RAY_AUTH_TOKEN|PGPASSWORD)\s*[:=]", line):
                value = re.split(r"[:=]", line, maxsplit=1)[1].strip()
                assert value == "" or value.startswith("${"), f"{path}: {line}"


def test_the_storage_url_file_must_be_readable_and_one_line(tmp_path):
    missing = _cli(
        "status", "--study", "x", cwd=tmp_path, AUTONAT_STORAGE_FILE=str(tmp_path / "none")
    )
    assert missing.returncode == 1
    assert missing.stderr.strip() == (
        f"error: AUTONAT_STORAGE_FILE: cannot read {tmp_path / 'none'} (No such file or directory)"
    )
    two_lines = tmp_path / "two"
    two_lines.write_text("sqlite:///a.db\nsqlite:///b.db\n")
    bad = _cli("status", "--study", "x", cwd=tmp_path, AUTONAT_STORAGE_FILE=str(two_lines))
    assert bad.returncode == 1 and "must hold the storage URL on one line" in bad.stderr
