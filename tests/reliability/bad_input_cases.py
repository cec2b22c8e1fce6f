"""Bad input the CLI must refuse before any work: the cases, how to make each, and the table
of their messages in ``docs/errors.md``.

Each case writes its files into a fresh folder (a copy of the digits-demo bundle, a study
file, a strategy file), runs ``autonat-search`` there as a process, and expects one line on
stderr, exit code 1 and no store created. ``python tests/reliability/bad_input_cases.py``
runs every case, prints its wall time, and rewrites ``docs/errors.md`` from the real
messages (``--check`` only compares).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "errors.md"
UNREACHABLE_PG = "postgresql+psycopg2://postgres@127.0.0.1:5999/none"
STORE = "store.db"


@dataclass(frozen=True)
class Case:
    name: str
    what: str  # the bad input, in words (the table's first column)
    prepare: Callable[[Path], list[str]]  # writes the files; returns the CLI arguments


def _bundle(folder: Path) -> Path:
    shutil.copytree(REPO / "bundles" / "digits_demo", folder / "digits_demo")
    shutil.copy(REPO / "bundles" / "digits_demo.yaml", folder / "bundle.yaml")
    return folder / "bundle.yaml"


def _study(folder: Path, **changes: Any) -> list[str]:
    _bundle(folder)
    data: dict[str, Any] = {
        "name": "bad-input",
        "bundle": "bundle.yaml",
        "steps": 8,
        "budget": {"n_trials": 3},
        "fidelity": {"rungs": [100, 200], "pruner": "none"},
        "samples": {"chunk": 50, "batch_size": 100},
        "device": {"kind": "cpu", "precision": "fp32"},
    }
    data.update(changes)
    (folder / "study.yaml").write_text(yaml.safe_dump(data))
    return ["start-study", "study.yaml", "--storage", f"sqlite:///{STORE}"]


def _write_strategy(folder: Path, text: str) -> None:
    (folder / "strategy.yaml").write_text(text)


_GOOD_T4 = (
    "manual_ratios: [0.9, 0.6, 0.2]\nmanual_temp: [1.0, 0.5, 0.2]\n"
    "manual_samp_temp: [1.0, 1.0, 1.0, 1.0]\nmanual_cfg: [0.5, 1.0, 1.5, 2.0]\n"
)


def _evaluate(folder: Path, strategy_text: str) -> list[str]:
    _bundle(folder)
    _write_strategy(folder, strategy_text)
    return ["evaluate", "--bundle", "bundle.yaml", "--strategy", "strategy.yaml", "--n", "100"]


def _broken_study_yaml(folder: Path) -> list[str]:
    args = _study(folder)
    (folder / "study.yaml").write_text("name: bad-input\nbundle: [bundle.yaml\nsteps: 8\n")
    return args


def _broken_bundle_yaml(folder: Path) -> list[str]:
    args = _study(folder)
    (folder / "bundle.yaml").write_text("name: digits\nclasses: 10\n  null_class: 10\n")
    return args


def _wrong_shapes(folder: Path) -> list[str]:
    import torch

    args = _study(folder)
    path = folder / "digits_demo" / "nnet_ema.pth"
    state = torch.load(path, map_location="cpu", weights_only=True)
    key = next(k for k, v in state.items() if v.ndim == 2)
    state[key] = torch.zeros(state[key].shape[0] + 1, state[key].shape[1])
    torch.save(state, path)
    return args


def _truncated(folder: Path) -> list[str]:
    args = _study(folder)
    path = folder / "digits_demo" / "nnet_ema.pth"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return args


def _stats_of_wrong_dimension(folder: Path) -> list[str]:
    import numpy as np

    args = _study(folder)
    np.savez(folder / "digits_demo" / "fid_stats.npz", mu=np.zeros(5), sigma=np.eye(5))
    return args


def _missing_checkpoint(folder: Path) -> list[str]:
    args = _study(folder)
    (folder / "digits_demo" / "classifier.pth").unlink()
    return args


def _warm_start(folder: Path, text: str) -> list[str]:
    args = _study(folder, warm_start=["strategy.yaml"], steps=4)
    _write_strategy(folder, text)
    return args


def _storage_unreachable(folder: Path) -> list[str]:
    args = _study(folder)
    return [*args[:-2], "--storage", UNREACHABLE_PG]


CASES: tuple[Case, ...] = (
    Case("study-yaml-broken", "study file that is not valid YAML", _broken_study_yaml),
    Case("study-unknown-key", "unknown key", lambda f: _study(f, samplr={"name": "tpe"})),
    Case(
        "study-nan",
        "NaN in a range",
        lambda f: _study(f, space={"ranges": {"cfg": [float("nan"), 2.0]}}),
    ),
    Case("study-negative", "negative budget", lambda f: _study(f, budget={"n_trials": -3})),
    Case(
        "rungs-not-increasing",
        "non-increasing rung list",
        lambda f: _study(f, fidelity={"rungs": [200, 100], "pruner": "none"}),
    ),
    Case("steps-too-many", "`steps: 1000` on a 64-token bundle", lambda f: _study(f, steps=1000)),
    Case("bundle-yaml-broken", "bundle file that is not valid YAML", _broken_bundle_yaml),
    Case("bundle-file-missing", "bundle names a missing weights file", _missing_checkpoint),
    Case("checkpoint-wrong-shapes", "checkpoint with wrong shapes", _wrong_shapes),
    Case("checkpoint-truncated", "truncated checkpoint", _truncated),
    Case(
        "reference-stats-dimension",
        "reference statistics of the wrong dimension",
        _stats_of_wrong_dimension,
    ),
    Case(
        "warm-start-nan",
        "strategy file (warm start) holding NaN",
        lambda f: _warm_start(f, _GOOD_T4.replace("1.5", ".nan")),
    ),
    Case(
        "warm-start-count",
        "strategy file (warm start) with a value missing",
        lambda f: _warm_start(f, _GOOD_T4.replace("0.5, 1.0, 1.5", "0.5, 1.0")),
    ),
    Case(
        "warm-start-unknown-key",
        "strategy file (warm start) with an unknown key",
        lambda f: _warm_start(f, _GOOD_T4 + "manual_steps: 4\n"),
    ),
    Case("storage-unreachable", "start-study: storage unreachable", _storage_unreachable),
    Case(
        "worker-storage-unreachable",
        "worker: storage unreachable (before Ray)",
        lambda f: ["worker", "--study", "x", "--storage", UNREACHABLE_PG],
    ),
    Case(
        "evaluate-strategy-negative",
        "evaluate: negative temperature in the strategy file",
        lambda f: _evaluate(f, _GOOD_T4.replace("[1.0, 0.5", "[-1.0, 0.5")),
    ),
    Case(
        "evaluate-strategy-yaml",
        "evaluate: strategy file that is not valid YAML",
        lambda f: _evaluate(f, "manual_ratios: [0.5\n"),
    ),
    Case(
        "evaluate-steps-too-many",
        "evaluate: 100-step strategy on a 64-token bundle",
        lambda f: _evaluate(
            f,
            f"manual_ratios: {[0.5] * 99}\nmanual_temp: {[1.0] * 99}\n"
            f"manual_samp_temp: {[1.0] * 100}\nmanual_cfg: {[1.0] * 100}\n",
        ),
    ),
)


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stderr: str
    stdout: str
    seconds: float  # wall
    cpu_seconds: float  # user + system of the process
    store_created: bool

    @property
    def message(self) -> str:
        return self.stderr.strip()


def run_case(case: Case, folder: Path) -> Outcome:
    folder.mkdir(parents=True, exist_ok=True)
    args = case.prepare(folder)
    env = {k: v for k, v in os.environ.items() if k != "AUTONAT_STORAGE"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "autonat_search.cli", *args],
        capture_output=True,
        text=True,
        cwd=folder,
        env=env,
        timeout=300,
    )
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return Outcome(
        result.returncode,
        result.stderr.replace(str(folder.resolve()), "<dir>"),
        result.stdout,
        seconds,
        cpu,
        (folder / STORE).exists() or (folder / "autonat-search.db").exists(),
    )


def docs_table(messages: dict[str, str]) -> str:
    lines = [
        "# Errors: bad input and what the CLI says",
        "",
        "Every case is refused before any work: one line on stderr, exit code 1, nothing",
        "written to a study (no store is created). `<dir>` is the folder the command ran in.",
        "Generated by `python tests/reliability/bad_input_cases.py` from the real messages;",
        "`tests/reliability/test_bad_input.py` checks that it is current.",
        "",
        "| case | bad input | message |",
        "| --- | --- | --- |",
    ]
    for case in CASES:
        message = messages[case.name].replace("|", "\\|")
        lines.append(f"| `{case.name}` | {case.what} | `{message}` |")
    return "\n".join(lines) + "\n"


def documented_messages() -> dict[str, str]:
    """Case name -> message, as ``docs/errors.md`` states them."""
    found = {}
    for line in DOCS.read_text().splitlines():
        if line.startswith("| `"):
            cells = line.split(" | ")
            name = cells[0].removeprefix("| `").removesuffix("`")
            found[name] = cells[2].removeprefix("`").removesuffix("` |").replace("\\|", "|")
    return found


def main(argv: list[str]) -> int:
    import tempfile

    messages = {}
    with tempfile.TemporaryDirectory() as tmp:
        for case in CASES:
            outcome = run_case(case, Path(tmp) / case.name)
            messages[case.name] = outcome.message
            print(
                f"{outcome.seconds:6.2f} s wall {outcome.cpu_seconds:6.2f} s cpu  "
                f"exit {outcome.returncode}  {case.name}"
            )
    table = docs_table(messages)
    if "--check" in argv:
        return 0 if DOCS.read_text() == table else 1
    DOCS.write_text(table)
    print(f"-> {DOCS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
