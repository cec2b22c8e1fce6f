"""The training config: the reference's file loads as is; every bad value is named."""

import pytest
import yaml

from nat_core.train.config import TrainConfig, load_train_config

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
        ({"dataset": {"null_class": 5}, "nnet": {"num_classes": 4}}, r"dataset\.null_class.*5"),
        ({"dataset": {"root": "x"}}, r"dataset\.root"),
        ({"ema_rate": 0.9}, "ema_rate"),
    ],
)
def test_config_errors_name_the_key(raw, pattern):
    with pytest.raises(ValueError, match=pattern):
        load_train_config(raw)
