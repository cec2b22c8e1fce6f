"""The search-efficiency benchmark's smoke test: ``--quick`` as a user runs it."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = [
    "method",
    "space",
    "rungs",
    "seed",
    "trial",
    "images_so_far",
    "rung",
    "fid_at_rung",
    "best_so_far_fresh_fid",
]


def _quick(out: Path, *args: str) -> list[dict[str, str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "search_efficiency.py"), "--quick",
         "--out", str(out), *args],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    with (out / "evaluations.csv").open() as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_quick_run_writes_the_csv_the_table_and_the_plot(tmp_path):
    rows = _quick(tmp_path)
    assert list(rows[0]) == COLUMNS
    methods = {(r["method"], r["space"], r["rungs"]) for r in rows}
    assert ("fd", "raw", "top-only") in methods and ("tpe", "centered", "rungs") in methods
    for label in methods:
        images = [
            int(r["images_so_far"]) for r in rows if (r["method"], r["space"], r["rungs"]) == label
        ]
        assert images == sorted(images) and images[-1] >= 600  # the budget is spent
    assert all(float(r["fid_at_rung"]) > 0 for r in rows)
    table = (tmp_path / "images_to_baseline.md").read_text()
    assert "| fd/raw/top-only |" in table and "Target: the baseline" in table
    assert (tmp_path / "best_fid.png").stat().st_size > 1000


@pytest.mark.slow
def test_a_full_count_above_the_top_rung_lowers_every_search_and_says_so(tmp_path):
    rows = _quick(tmp_path, "--full-count", "200")  # --quick's rungs: 50, 100
    methods = {(r["method"], r["space"], r["rungs"]) for r in rows}
    assert ("fd", "raw", "top-only@100") in methods and ("tpe", "centered", "rungs@100") in methods
    assert all(rungs.endswith("@100") for _, _, rungs in methods)
    assert {int(r["rung"]) for r in rows} <= {50, 100}  # the searches stop at 100
    assert "| fd/raw/top-only@100 |" in (tmp_path / "images_to_baseline.md").read_text()
