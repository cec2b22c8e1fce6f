"""``python -m nat_core.train``: pretraining and tokenizing without the search service."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from nat_core.train.__main__ import main

REPO_ROOT = Path(__file__).resolve().parents[3]
SERVICE_MODULES = ("autonat_search", "optuna", "ray", "sqlalchemy", "typer")

# Runs the command as `python -m nat_core.train` does, then names any service module loaded.
RUN_AND_LIST_IMPORTS = """
import runpy, sys
sys.argv = ["nat_core.train", *sys.argv[1:]]
try:
    runpy.run_module("nat_core.train", run_name="__main__", alter_sys=True)
except SystemExit as stop:
    code = stop.code
else:
    code = 0
print("service modules:", sorted(m for m in sys.modules if m.split(".")[0] in {modules}))
sys.exit(code)
"""


@pytest.mark.slow
def test_pretrain_runs_as_a_module_and_imports_nothing_of_the_service(
    tmp_path, write_tokens, config_for
):
    config = tmp_path / "pretrain.yaml"
    config.write_text(yaml.safe_dump(config_for(write_tokens(), n_steps=50)))
    script = RUN_AND_LIST_IMPORTS.format(modules=set(SERVICE_MODULES))
    args = ["pretrain", str(config), "--out-dir", str(tmp_path / "run"), "--max-steps", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", script, *args, "--device", "cpu"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "service modules: []" in proc.stdout
    assert f"EMA weights -> {tmp_path / 'run' / 'nnet_ema.pth'}" in proc.stdout
    assert (tmp_path / "run" / "ckpts" / "2.ckpt" / "nnet.pth").is_file()
    again = subprocess.run(
        [sys.executable, "-m", "nat_core.train", *args, "--no-resume"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 1
    assert again.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "already holds checkpoints" in again.stderr


def test_bad_input_is_one_line_and_exit_code_1(tmp_path, capsys):
    assert main(["pretrain", str(tmp_path / "missing.yaml")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"error: training config not found: {tmp_path / 'missing.yaml'}"
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {batch_size: 0}\n")
    assert main(["pretrain", str(bad)]) == 1
    assert "train.batch_size must be an integer >= 1, got 0" in capsys.readouterr().err


def _write_pngs(folder: Path, count: int, seed: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        pixels = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.png")


def test_tokenize_writes_rows_with_the_bundle_tokenizer(tmp_path, tiny_bundle_path, capsys):
    for label, seed in (("cat", 0), ("dog", 1)):
        _write_pngs(tmp_path / "images" / label, 2, seed)
    common = ["--bundle", str(tiny_bundle_path), "--device", "cpu"]
    out = tmp_path / "tokens.npy"
    assert main(["tokenize", str(tmp_path / "images"), "-o", str(out), *common]) == 0
    rows = np.load(out)
    assert rows.shape == (8, 1 + 16) and rows.dtype == np.int64  # each image and its mirror
    assert rows[:, 0].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert rows[:, 1:].min() >= 0 and rows[:, 1:].max() < 16
    assert f"8 rows of 16 tokens -> {out}" in capsys.readouterr().out
    plain = tmp_path / "plain.npy"
    assert main(["tokenize", str(tmp_path / "images"), "-o", str(plain), "--no-flip", *common]) == 0
    np.testing.assert_array_equal(np.load(plain), rows[0::2])
