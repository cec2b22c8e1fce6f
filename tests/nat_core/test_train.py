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
import yaml
from scipy import stats

from nat_core.checkpoints import read_state_dict
from nat_core.data import write_token_dataset
from nat_core.model import NATransformer, load_nat_checkpoint
from nat_core.train import (
    TrainProgress,
    drop_labels,
    ema_update,
    latest_checkpoint,
    mask_tokens,
    masked_token_loss,
    pretrain,
    sample_mask_ratios,
    warmup_lr,
)
from nat_core.train_config import TrainConfig, load_train_config

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY = dict(img_size=4, codebook_size=8, embed_dim=32, depth=2, num_heads=2, num_classes=4)


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny matrices on a shared 2-core machine: more threads only contend.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _token_file(tmp_path: Path, n: int = 24) -> Path:
    """Rows whose codes follow from the label and the position: a learnable dataset."""
    labels = np.arange(n) % 3
    codes = (labels[:, None] * 3 + np.arange(16)[None] // 2) % 8
    return write_token_dataset(tmp_path / "tokens.npy", np.concatenate([labels[:, None], codes], 1))


def _config(data: Path, **train) -> dict:
    return {
        "train": {
            "n_steps": 10,
            "batch_size": 4,
            "log_interval": 1,
            "save_interval": 100,
            "num_workers": 0,
            "ema": 0.9,
            **train,
        },
        "optimizer": {"name": "adamw", "lr": 1e-2, "weight_decay": 0.03, "betas": [0.9, 0.99]},
        "lr_scheduler": {"name": "customized", "warmup_steps": 2},
        "nnet": TINY,
        "muse": {"ignore_ind": -1, "smoothing": 0.1},
        "dataset": {"name": "tokens", "path": str(data), "cfg": True, "p_uncond": 0.15},
    }


def _fixed_batch_loss(model: NATransformer, data: Path) -> float:
    rows = torch.from_numpy(np.load(data))[:12]
    ids, targets = mask_tokens(rows[:, 1:], mask_id=8, generator=torch.Generator().manual_seed(0))
    model = copy.deepcopy(model).eval()
    with torch.no_grad():
        return masked_token_loss(model(ids, rows[:, 0]), targets).item()


def test_pretraining_lowers_the_loss_on_a_fixed_batch(tmp_path):
    data = _token_file(tmp_path)
    reports: list[TrainProgress] = []
    fixed: dict[int, float] = {}

    def callback(report: TrainProgress) -> None:
        reports.append(report)
        if report.step in (1, 40):
            fixed[report.step] = _fixed_batch_loss(report.nnet, data)

    pretrain(_config(data, n_steps=40), out_dir=tmp_path / "run", progress=False, callback=callback)
    assert [r.step for r in reports] == list(range(1, 41))
    assert fixed[40] < 0.75 * fixed[1], fixed
    losses = [r.loss for r in reports]
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
    assert reports[0].lr == pytest.approx(5e-3) and reports[-1].lr == pytest.approx(1e-2)


def test_saved_ema_loads_strictly_and_equals_the_ema_weights(tmp_path):
    data = _token_file(tmp_path)
    final: dict[str, dict] = {}

    def callback(report: TrainProgress) -> None:
        final["ema"] = {k: v.clone() for k, v in report.nnet_ema.state_dict().items()}
        final["nnet"] = {k: v.clone() for k, v in report.nnet.state_dict().items()}

    path = pretrain(
        _config(data, n_steps=6, save_interval=3),
        out_dir=tmp_path / "run",
        progress=False,
        callback=callback,
    )
    assert path == tmp_path / "run" / "nnet_ema.pth"
    model = NATransformer(**TINY)
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


def test_ema_update_follows_the_reference_rule():
    ema, model = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    expected = 0.9 * ema.weight.detach() + 0.1 * model.weight.detach()
    ema_update(ema, model, 0.9)
    torch.testing.assert_close(ema.weight, expected)
    ema_update(ema, model, 0.0)
    assert torch.equal(ema.weight, model.weight)


def _ckpt_tensors(path: Path) -> dict:
    return {
        name: torch.load(path / name, weights_only=True)
        for name in ("step.pth", "nnet.pth", "nnet_ema.pth", "optimizer.pth")
    }


def test_resume_matches_an_uninterrupted_run(tmp_path):
    data = _token_file(tmp_path)  # 6 batches per epoch: both runs cross epochs
    steps: list[int] = []
    pretrain(_config(data, save_interval=3), out_dir=tmp_path / "a", max_steps=5, progress=False)
    assert latest_checkpoint(tmp_path / "a" / "ckpts").name == "5.ckpt"
    pretrain(
        _config(data, save_interval=3, num_workers=1),
        out_dir=tmp_path / "a",
        max_steps=11,
        progress=False,
        callback=lambda r: steps.append(r.step),
    )
    assert steps == list(range(6, 12))
    pretrain(_config(data, save_interval=3), out_dir=tmp_path / "b", max_steps=11, progress=False)
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
        pretrain(_config(data), out_dir=tmp_path / "a", resume=False, progress=False)


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


def test_ddp_on_two_cpu_processes_ends_with_identical_weights(tmp_path):
    data = _token_file(tmp_path)
    script = tmp_path / "ddp_run.py"
    script.write_text(textwrap.dedent(DDP_SCRIPT))
    config = _config(data, n_steps=6, batch_size=8, log_interval=3, save_interval=3)
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


def test_mask_tokens_follows_beta_12_3():
    codes = torch.randint(0, 8, (20000, 64), generator=torch.Generator().manual_seed(1))
    ids, targets = mask_tokens(codes, mask_id=8, generator=torch.Generator().manual_seed(2))
    masked = ids == 8
    assert abs(masked.float().mean().item() - 0.8) < 0.01
    assert masked.sum(1).min() >= 1
    assert torch.equal(targets, torch.where(masked, codes, -1))
    assert torch.equal(ids, torch.where(masked, 8, codes))
    # Masked positions are spread evenly over the sequence.
    per_position = masked.float().mean(0)
    assert (per_position - 0.8).abs().max() < 0.03
    again, _ = mask_tokens(codes, mask_id=8, generator=torch.Generator().manual_seed(2))
    assert torch.equal(again, ids)


def test_mask_ratios_are_beta_distributed():
    ratios = sample_mask_ratios(20000, beta=(12.0, 3.0), generator=torch.Generator().manual_seed(3))
    assert ratios.dtype == torch.float64
    assert stats.kstest(ratios.numpy(), stats.beta(12, 3).cdf).pvalue > 1e-3
    assert abs(ratios.mean().item() - 0.8) < 0.005
    assert abs(ratios.var().item() - 0.01) < 0.001


def test_masking_never_masks_zero_tokens():
    codes = torch.zeros(5000, 16, dtype=torch.long)
    ids, targets = mask_tokens(
        codes,
        mask_id=8,
        beta=(0.5, 400.0),
        ignore_index=-100,
        generator=torch.Generator().manual_seed(4),
    )
    counts = (ids == 8).sum(1)
    assert counts.min() == 1 and (counts == 1).float().mean() > 0.95
    assert set(targets.unique().tolist()) == {-100, 0}
    ids, _ = mask_tokens(
        codes, mask_id=8, beta=(400.0, 0.5), generator=torch.Generator().manual_seed(5)
    )
    assert (ids == 8).all()


def test_null_class_dropout_rate():
    labels = torch.randint(0, 1000, (200000,), generator=torch.Generator().manual_seed(6))
    out = drop_labels(labels, p=0.15, null_class=1000, generator=torch.Generator().manual_seed(7))
    dropped = out == 1000
    assert abs(dropped.float().mean().item() - 0.15) < 0.005
    assert torch.equal(out[~dropped], labels[~dropped])
    g = torch.Generator().manual_seed(8)
    assert torch.equal(drop_labels(labels, p=0.0, null_class=1000, generator=g), labels)
    assert (drop_labels(labels, p=1.0, null_class=1000, generator=g) == 1000).all()


def test_warmup_is_linear_then_constant():
    lrs = [warmup_lr(s, base_lr=4e-4, warmup_steps=5000) for s in (1, 2500, 5000, 9000)]
    assert lrs == pytest.approx([4e-4 / 5000, 2e-4, 4e-4, 4e-4])
    assert warmup_lr(1, base_lr=1e-3, warmup_steps=-1) == 1e-3


REFERENCE_CONFIG = """
train: {n_steps: 500000, batch_size: 2048, log_interval: 50, save_interval: 5000}
optimizer: {name: 'adamw', lr: 0.0004, weight_decay: 0.03, betas: [0.99, 0.99]}
lr_scheduler: {name: 'customized', warmup_steps: 5000}
nnet: {img_size: 16, codebook_size: 1024, embed_dim: 768, depth: 24, num_heads: 8,
       mlp_ratio: 4, qkv_bias: False, num_classes: 1001, use_checkpoint: False, skip: True}
muse: {ignore_ind: -1, smoothing: 0.1}
dataset: {name: 'imagenet256_features', path: 'assets/imagenet256_vq_features', cfg: True,
          p_uncond: 0.15}
"""


def test_reference_config_loads_as_is(tmp_path):
    path = tmp_path / "AutoNAT_L.yaml"
    path.write_text(REFERENCE_CONFIG)
    cfg = load_train_config(path)
    assert isinstance(cfg, TrainConfig)
    assert cfg.train.batch_size == 2048 and cfg.train.ema == 0.9999
    assert cfg.train.mask_beta == (12.0, 3.0) and cfg.optimizer.betas == (0.99, 0.99)
    assert cfg.nnet["depth"] == 24 and cfg.null_class == 1000 and cfg.seq_len == 256
    assert load_train_config(cfg.to_dict()) == cfg
    assert load_train_config(yaml.safe_load(yaml.safe_dump(cfg.to_dict()))) == cfg
    assert load_train_config({"optimizer": {"lr": "4e-4"}}).optimizer.lr == 4e-4
    with pytest.raises(AttributeError):
        cfg.train.seed = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg.nnet["depth"] = 2  # type: ignore[index]


@pytest.mark.parametrize(
    ("raw", "pattern"),
    [
        ({"train": {"n_stpes": 5}}, r"train\.n_stpes"),
        ({"train": {"batch_size": 0}}, r"train\.batch_size.*0"),
        ({"train": {"batch_size": True}}, r"train\.batch_size.*True"),
        ({"train": {"ema": 1.5}}, r"train\.ema.*1\.5"),
        ({"train": {"mask_beta": [12]}}, r"train\.mask_beta.*\[12\]"),
        ({"train": {"mask_beta": [12, -3]}}, r"train\.mask_beta.*-3"),
        ({"train": {"mixed_precision": "fp8"}}, r"train\.mixed_precision.*fp8"),
        ({"optimizer": {"lr": -1}}, r"optimizer\.lr.*-1"),
        ({"optimizer": {"name": "sgd"}}, r"optimizer\.name.*sgd"),
        ({"optimizer": {"betas": [0.9, 1.0]}}, r"optimizer\.betas"),
        ({"lr_scheduler": {"name": "cosine"}}, r"lr_scheduler\.name.*cosine"),
        ({"nnet": {"depht": 2}}, r"nnet\.depht"),
        ({"nnet": {"embed_dim": 30, "num_heads": 4}}, r"nnet\.embed_dim.*30"),
        ({"muse": {"ignore_ind": 3}}, r"muse\.ignore_ind.*3"),
        ({"muse": {"smoothing": 1.0}}, r"muse\.smoothing.*1\.0"),
        ({"dataset": {"p_uncond": 1.5}}, r"dataset\.p_uncond.*1\.5"),
        ({"dataset": {"null_class": 5}, "nnet": TINY}, r"dataset\.null_class.*5"),
        ({"dataset": {"root": "x"}}, r"dataset\.root"),
        ({"ema_rate": 0.9}, "ema_rate"),
    ],
)
def test_config_errors_name_the_key(raw, pattern):
    with pytest.raises(ValueError, match=pattern):
        load_train_config(raw)


def test_pretrain_checks_its_data(tmp_path):
    data = _token_file(tmp_path, n=6)
    with pytest.raises(ValueError, match=r"train\.batch_size 8 exceeds the 6 rows"):
        pretrain(_config(data, batch_size=8), out_dir=tmp_path / "a", progress=False)
    rows = np.load(data)
    rows[2, 5] = 8
    bad = write_token_dataset(tmp_path / "bad.npy", rows)
    with pytest.raises(ValueError, match=r"bad\.npy.*code ids.*\[0, 8\)"):
        pretrain(
            _config(data, batch_size=6), dataset_path=bad, out_dir=tmp_path / "b", progress=False
        )
    with pytest.raises(ValueError, match=r"4 codes.*16"):
        pretrain(
            _config(write_token_dataset(tmp_path / "short.npy", rows[:, :5])),
            out_dir=tmp_path / "c",
            progress=False,
        )
    with pytest.raises(ValueError, match="out_dir"):
        pretrain(_config(data), progress=False)
