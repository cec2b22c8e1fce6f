"""pretrain end to end: learning, checkpoints, resume, DDP on two CPU processes, bad data."""

import copy
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from nat_core.checkpoints import read_state_dict
from nat_core.data import write_token_dataset
from nat_core.model import NATransformer, load_nat_checkpoint
from nat_core.train import (
    TrainProgress,
    latest_checkpoint,
    mask_tokens,
    masked_token_loss,
    pretrain,
)

REPO_ROOT = Path(__file__).resolve().parents[3]


def _fixed_batch_loss(model: NATransformer, data: Path) -> float:
    rows = torch.from_numpy(np.load(data))[:12]
    ids, targets = mask_tokens(rows[:, 1:], mask_id=8, generator=torch.Generator().manual_seed(0))
    model = copy.deepcopy(model).eval()
    with torch.no_grad():
        return masked_token_loss(model(ids, rows[:, 0]), targets).item()


def test_pretraining_lowers_the_loss_on_a_fixed_batch(tmp_path, write_tokens, config_for):
    data = write_tokens()
    reports: list[TrainProgress] = []
    fixed: dict[int, float] = {}

    def callback(report: TrainProgress) -> None:
        reports.append(report)
        if report.step in (1, 40):
            fixed[report.step] = _fixed_batch_loss(report.nnet, data)

    pretrain(
        config_for(data, n_steps=40), out_dir=tmp_path / "run", progress=False, callback=callback
    )
    assert [r.step for r in reports] == list(range(1, 41))
    assert fixed[40] < 0.75 * fixed[1], fixed
    losses = [r.loss for r in reports]
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
    assert reports[0].lr == pytest.approx(5e-3) and reports[-1].lr == pytest.approx(1e-2)


def test_saved_ema_loads_strictly_and_equals_the_ema_weights(
    tmp_path, write_tokens, config_for, tiny_nat
):
    data = write_tokens()
    final: dict[str, dict] = {}

    def callback(report: TrainProgress) -> None:
        final["ema"] = {k: v.clone() for k, v in report.nnet_ema.state_dict().items()}
        final["nnet"] = {k: v.clone() for k, v in report.nnet.state_dict().items()}

    path = pretrain(
        config_for(data, n_steps=6, save_interval=3),
        out_dir=tmp_path / "run",
        progress=False,
        callback=callback,
    )
    assert path == tmp_path / "run" / "nnet_ema.pth"
    model = NATransformer(**tiny_nat)
    load_nat_checkpoint(model, path)
    for key, value in model.state_dict().items():
        assert torch.equal(value, final["ema"][key]), key
    assert any(not torch.equal(final["ema"][k], final["nnet"][k]) for k in final["nnet"])
    ckpt = tmp_path / "run" / "ckpts" / "6.ckpt"
    assert latest_checkpoint(tmp_path / "run" / "ckpts") == ckpt
    assert (tmp_path / "run" / "ckpts" / "3.ckpt" / "nnet.pth").is_file()
    saved = torch.load(ckpt / "nnet_ema.pth", weights_only=True)
    assert set(saved) == set(final["ema"])  # reference key names: no "module." prefix
    assert all(torch.equal(saved[k], final["ema"][k]) for k in saved)
    assert torch.load(ckpt / "step.pth", weights_only=True) == 6
    nnet = read_state_dict(ckpt / "nnet.pth")
    assert all(torch.equal(nnet[k], final["nnet"][k]) for k in nnet)


def _ckpt_tensors(path: Path) -> dict:
    return {
        name: torch.load(path / name, weights_only=True)
        for name in ("step.pth", "nnet.pth", "nnet_ema.pth", "optimizer.pth")
    }


def test_resume_matches_an_uninterrupted_run(tmp_path, write_tokens, config_for):
    data = write_tokens()  # 6 batches per epoch: both runs cross epochs
    steps: list[int] = []
    pretrain(config_for(data, save_interval=3), out_dir=tmp_path / "a", max_steps=5, progress=False)
    assert latest_checkpoint(tmp_path / "a" / "ckpts").name == "5.ckpt"
    pretrain(
        config_for(data, save_interval=3, num_workers=1),
        out_dir=tmp_path / "a",
        max_steps=11,
        progress=False,
        callback=lambda r: steps.append(r.step),
    )
    assert steps == list(range(6, 12))
    pretrain(
        config_for(data, save_interval=3), out_dir=tmp_path / "b", max_steps=11, progress=False
    )
    resumed = _ckpt_tensors(tmp_path / "a" / "ckpts" / "11.ckpt")
    straight = _ckpt_tensors(tmp_path / "b" / "ckpts" / "11.ckpt")
    assert resumed["step.pth"] == straight["step.pth"] == 11
    for name in ("nnet.pth", "nnet_ema.pth"):
        for key, value in straight[name].items():
            assert torch.equal(resumed[name][key], value), (name, key)
    opt_a, opt_b = resumed["optimizer.pth"]["state"], straight["optimizer.pth"]["state"]
    assert opt_a.keys() == opt_b.keys()
    for index, state in opt_b.items():
        for key, value in state.items():
            assert torch.equal(opt_a[index][key], value), (index, key)
    assert resumed["optimizer.pth"]["param_groups"] == straight["optimizer.pth"]["param_groups"]

    with pytest.raises(ValueError, match="already holds checkpoints"):
        pretrain(config_for(data), out_dir=tmp_path / "a", resume=False, progress=False)


DDP_SCRIPT = """
import json, sys
import torch
from nat_core.train import pretrain

config, out, results = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]

def keep(report):
    if report.step == config["train"]["n_steps"]:
        torch.save({"nnet": report.nnet.state_dict(), "ema": report.nnet_ema.state_dict(),
                    "loss": report.loss, "world_size": report.world_size},
                   f"{results}/rank{report.rank}.pt")

pretrain(config, out_dir=out, progress=False, callback=keep)
"""


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_ends_with_identical_weights(tmp_path, write_tokens, config_for):
    data = write_tokens()
    script = tmp_path / "ddp_run.py"
    script.write_text(textwrap.dedent(DDP_SCRIPT))
    config = config_for(data, n_steps=6, batch_size=8, log_interval=3, save_interval=3)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(script),
            json.dumps(config),
            str(tmp_path / "out"),
            str(tmp_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert rank0["world_size"] == rank1["world_size"] == 2
    assert rank0["loss"] == rank1["loss"]  # all-reduced
    for part in ("nnet", "ema"):
        for key, value in rank0[part].items():
            assert torch.equal(value, rank1[part][key]), (part, key)
    saved = torch.load(tmp_path / "out" / "ckpts" / "6.ckpt" / "nnet.pth", weights_only=True)
    assert all(torch.equal(saved[k], rank0["nnet"][k]) for k in saved)
    rng = torch.load(tmp_path / "out" / "ckpts" / "6.ckpt" / "rng.pth", weights_only=True)
    assert rng["world_size"] == 2 and len(rng["states"]) == 2
    assert not torch.equal(rng["states"][0], rng["states"][1])  # each rank its own dropout
    assert (tmp_path / "out" / "nnet_ema.pth").is_file()


def test_pretrain_checks_its_data(tmp_path, write_tokens, config_for):
    data = write_tokens(n=6)
    with pytest.raises(ValueError, match=r"train\.batch_size 8 exceeds the 6 rows"):
        pretrain(config_for(data, batch_size=8), out_dir=tmp_path / "a", progress=False)
    rows = np.load(data)
    rows[2, 5] = 8
    bad = write_token_dataset(tmp_path / "bad.npy", rows)
    with pytest.raises(ValueError, match=r"bad\.npy.*code ids.*\[0, 8\)"):
        pretrain(
            config_for(data, batch_size=6), dataset_path=bad, out_dir=tmp_path / "b", progress=False
        )
    with pytest.raises(ValueError, match=r"4 codes.*16"):
        pretrain(
            config_for(write_token_dataset(tmp_path / "short.npy", rows[:, :5])),
            out_dir=tmp_path / "c",
            progress=False,
        )
    with pytest.raises(ValueError, match="out_dir"):
        pretrain(config_for(data), progress=False)
