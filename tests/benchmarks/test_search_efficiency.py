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


@pytest.mark.slow
def test_quick_run_writes_the_csv_the_table_and_the_plot(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "search_efficiency.py"), "--quick",
         "--out", str(tmp_path)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    with (tmp_path / "evaluations.csv").open() as handle:
        rows = list(csv.DictReader(handle))
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
