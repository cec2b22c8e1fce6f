"""The CLI behaves like the tools users know, checked on real processes: usage errors,
flags, choices, help, read-only commands, hints, exports, --watch, --debug, bugs."""

import csv
import os
import shlex
import subprocess
import sys
import time
import typing
from pathlib import Path

import pytest

from autonat_search import config as study_config_module
from autonat_search.cli import app, job_commands
from autonat_search.config import parse_study_config
from autonat_search.demo import status_command
from autonat_search.execution.objective import trial_strategy
from autonat_search.space import build_space
from autonat_search.storage import open_storage
from autonat_search.study import start_study

REPO = Path(__file__).resolve().parents[3]
BUNDLE = REPO / "bundles" / "digits_demo.yaml"
CLI = [sys.executable, "-m", "autonat_search.cli"]


def _cli(*args, cwd=None, storage=None, timeout=300):
    env = {k: v for k, v in os.environ.items() if k != "AUTONAT_STORAGE"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    if storage:
        env["AUTONAT_STORAGE"] = storage
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout
    )


def _study(url, *, budget=3, finished=3, name="conventions"):
    """A study of the digits bundle with ``finished`` trials told complete (no workers)."""
    config = parse_study_config(
        {
            "name": name,
            "bundle": str(BUNDLE),
            "steps": 4,
            "budget": {"n_trials": budget},
            "sampler": {"name": "random", "seed": 0},
            "fidelity": {"rungs": [100, 200], "pruner": "none"},
            "samples": {"chunk": 50, "batch_size": 100},
            "device": {"kind": "cpu", "precision": "fp32"},
            "warm_start": [],
        }
    )
    study, _ = start_study(config, open_storage(url))
    space = build_space(config.space, steps=config.steps)
    for index in range(finished):
        _tell_one(study, space, 10.0 + index)
    return study, space


def _tell_one(study, space, fid):
    trial = study.ask()
    trial_strategy(trial, space)
    study.tell(trial, fid)


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('store') / 'studies.db'}"
    _study(url)
    return url


EVALUATE = ["evaluate", "--bundle", "b.yaml", "--strategy", "s.yaml"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["status", "--bogus"], "No such option: --bogus"),
        (["status"], "Missing option '--study'"),
        (["no-such-command"], "No such command 'no-such-command'"),
        ([*EVALUATE, "--labels", "diagonal"], "Invalid value for '--labels'"),
        ([*EVALUATE, "--precision", "fp64"], "Invalid value for '--precision'"),
        ([*EVALUATE, "--device", "tpu"], "Invalid value for '--device'"),
        ([*EVALUATE, "--n", "many"], "Invalid value for '--n'"),
        (["fid-stats", "imgs", "-o", "s.npz", "--device", "tpu"], "Invalid value for '--device'"),
        (
            ["tokenize", "imgs", "-o", "t.npy", "--bundle", "b.yaml", "--device", "cuda:x"],
            "'cuda:x'",
        ),
    ],
)
def test_usage_errors_are_clicks_lines_and_exit_2(args, message):
    result = _cli(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[0].startswith("Usage: ")
    assert lines[1].startswith("Try '") and lines[1].endswith("' for help.")
    assert lines[-1].startswith("Error: ") and message in lines[-1]
    assert len(lines) == 3


def test_the_usage_hint_is_a_command_that_works():
    hint = _cli("status", "--bogus").stderr.splitlines()[1]
    command = shlex.split(hint.removeprefix("Try '").removesuffix("' for help."))
    assert command[:3] == ["python", "-m", "autonat_search.cli"]
    shown = _cli(*command[3:])
    assert shown.returncode == 0 and "--study" in shown.stdout


def _commands():
    import typer

    group = typer.main.get_command(app)
    return group, {name: group.commands[name] for name in group.commands}


def test_every_option_and_argument_has_help_and_booleans_are_flags():
    group, commands = _commands()
    for name, command in [("(global)", group), *commands.items()]:
        for param in command.params:
            assert getattr(param, "help", None), f"{name} {param.name} has no help"
            if getattr(param, "type", None) is not None and param.type.name == "boolean":
                assert param.is_flag, f"{name} {param.name} is a boolean but not a flag"


def test_help_shows_flags_bare_and_choices_listed():
    top = _cli("--help")
    assert top.returncode == 0 and "<bool>" not in top.stdout
    assert "--debug  " in top.stdout
    status = _cli("status", "--help")
    assert "<bool>" not in status.stdout and "--json  " in status.stdout
    evaluate = _cli("evaluate", "--help")
    for choices in ("<balanced|uniform>", "<fp32|bf16|fp16>", "<cpu|cuda>"):
        assert choices in evaluate.stdout


def test_cli_choices_are_the_study_files_choices():
    assert typing.get_args(job_commands.Labels) == study_config_module.LABEL_MODES
    assert typing.get_args(job_commands.Precision) == study_config_module.PRECISIONS
    assert typing.get_args(job_commands.DeviceKind) == study_config_module.DEVICE_KINDS


@pytest.mark.parametrize(
    "args",
    [
        ["status", "--study", "x"],
        ["export-trials", "--study", "x", "-o", "t.csv"],
        ["export-best-strategy", "--study", "x", "-o", "b.yaml"],
    ],
)
def test_read_only_commands_never_create_a_store(args, tmp_path):
    result = _cli(*args, cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no store at ")
    assert str(tmp_path / "autonat-search.db") in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_demo_hint_is_a_command_that_works(finished_study):
    command = shlex.split(status_command(finished_study, "conventions"))
    assert command[0] == "autonat-search"
    result = _cli(*command[1:])
    assert result.returncode == 0, result.stderr
    assert "3 of 3 trials finished" in result.stdout


def test_export_trials_has_optuna_dataframe_columns(finished_study, tmp_path):
    out = tmp_path / "trials.csv"
    result = _cli("export-trials", "--study", "conventions", "-o", str(out), storage=finished_study)
    assert result.returncode == 0, result.stderr
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3
    header = set(rows[0])
    assert {"number", "state", "value", "fid@200", "manual_cfg"} <= header
    assert {"datetime_start", "datetime_complete", "duration"} <= header
    params = sorted(c for c in header if c.startswith("params_"))
    assert params and all(rows[0][c] != "" for c in params)
    assert all(row["datetime_complete"] for row in rows)


def test_status_watch_refreshes_until_the_budget_is_spent(tmp_path):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    study, space = _study(url, budget=3, finished=2, name="watched")
    env = {k: v for k, v in os.environ.items() if k != "AUTONAT_STORAGE"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    args = ["status", "--study", "watched", "--storage", url, "--watch", "--interval", "0.5"]
    watcher = subprocess.Popen(
        [*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        first = watcher.stdout.readline()  # click.echo flushes: the first report is out
        assert "2 of 3 trials finished" in first, watcher.stderr.read()
        time.sleep(3)  # several refreshes with nothing new: nothing printed again
        assert watcher.poll() is None
        _tell_one(study, space, 9.0)
        rest, err = watcher.communicate(timeout=120)
    finally:
        if watcher.poll() is None:
            watcher.kill()
    assert watcher.returncode == 0, err
    out = first + rest
    assert out.count("2 of 3 trials finished (COMPLETE 2)\n") == 1  # unchanged: not repeated
    assert out.count("3 of 3 trials finished") == 1
    assert "\033[" not in out  # not a terminal: no screen redraws


def test_debug_shows_the_whole_chain_of_a_user_error(tmp_path):
    (tmp_path / "broken.yaml").write_text("name: x\nbundle: [b\n")
    plain = _cli("start-study", "broken.yaml", cwd=tmp_path)
    assert plain.returncode == 1 and len(plain.stderr.strip().splitlines()) == 1
    debug = _cli("--debug", "start-study", "broken.yaml", cwd=tmp_path)
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr
    assert "yaml.parser.ParserError" in debug.stderr  # the cause, kept
    assert "autonat_search.errors.ConfigError" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1] == plain.stderr.strip()


_RUN_WITH = (
    "import sys; from autonat_search.cli.errors import run_reporting_errors as run; "
    "run(lambda: {raise_}, debug=lambda: False)"
)


@pytest.mark.parametrize(
    ("raise_", "kind"),
    [
        ("1 / 0", "ZeroDivisionError"),
        ("int('not a number')", "ValueError"),  # a ValueError that is not ours is a bug too
        ("open('/nonexistent/file')", "FileNotFoundError"),
    ],
)
def test_an_unexpected_error_is_a_bug_with_its_traceback(raise_, kind):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run(
        [sys.executable, "-c", _RUN_WITH.format(raise_=raise_)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Traceback" in result.stderr and kind in result.stderr
    assert (
        result.stderr.strip().splitlines()[-1].endswith("please report it with the traceback above")
    )


def test_a_project_error_is_one_line():
    env = dict(os.environ, PYTHONPATH=str(REPO))
    code = (
        "from autonat_search.cli.errors import run_reporting_errors as run\n"
        "from autonat_search.errors import StudyError\n"
        "def f():\n"
        "    raise StudyError('no study named x')\n"
        "run(f, debug=lambda: False)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr == "error: no study named x\n"


def test_the_default_store_is_an_absolute_path(tmp_path, monkeypatch):
    from autonat_search.storage import resolve_storage_url

    monkeypatch.delenv("AUTONAT_STORAGE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert resolve_storage_url(None) == f"sqlite:///{tmp_path / 'autonat-search.db'}"
    assert resolve_storage_url("sqlite:///sub/s.db") == f"sqlite:///{tmp_path / 'sub' / 's.db'}"
    assert resolve_storage_url("sqlite:////abs/s.db") == "sqlite:////abs/s.db"
    pg = "postgresql+psycopg2://u@h/db"
    assert resolve_storage_url(pg) == pg
