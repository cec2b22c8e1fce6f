"""The pretraining config (SPEC 4): the reference's sections (``configs/AutoNAT_L.yaml``),
each key checked by ``nat_core.schema``, with the reference's values for missing keys.

Our optional keys: ``train.ema`` (0.9999), ``train.seed`` (1234), ``train.out_dir``,
``train.mask_beta`` ([12, 3]), ``train.num_workers`` (2), ``train.mixed_precision`` ('no',
'bf16' or 'fp16'; CUDA only), ``optimizer.eps`` (1e-8), ``nnet.attention`` and
``dataset.null_class`` (``nnet.num_classes - 1``). ``dataset.path`` is a token ``.npy`` file
or a folder holding ``train.npy``. ``train.out_dir: null`` and ``dataset.null_class: null``
mean the default.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from nat_core.model import ATTENTION_BACKENDS, NAT_CONFIGS
from nat_core.schema import Field, parse, spec

__all__ = [
    "DatasetSection",
    "LRSchedulerSection",
    "MuseSection",
    "NnetSection",
    "OptimizerSection",
    "TrainConfig",
    "TrainSection",
    "load_train_config",
]

_PAIR_RULES: dict[str, Any] = {"length": 2, "describe": "a list of two numbers"}


@dataclass(frozen=True)
class TrainSection:
    n_steps: int = spec(int, default=500_000, minimum=0)
    batch_size: int = spec(int, default=2048, minimum=1)
    log_interval: int = spec(int, default=50, minimum=1)
    save_interval: int = spec(int, default=5000, minimum=1)
    ema: float = spec(float, default=0.9999, minimum=0.0, maximum=1.0)
    seed: int = spec(int, default=1234, minimum=0)
    out_dir: str | None = spec(str, default=None, nonempty=True)
    mask_beta: tuple[float, float] = spec(
        list, default=(12.0, 3.0), item=Field(float, above=0.0), **_PAIR_RULES
    )
    num_workers: int = spec(int, default=2, minimum=0)
    mixed_precision: str = spec(str, default="no", choices=("no", "bf16", "fp16"))


@dataclass(frozen=True)
class OptimizerSection:
    name: str = spec(str, default="adamw", choices=("adamw", "adam"))
    lr: float = spec(float, default=4e-4, above=0.0)
    weight_decay: float = spec(float, default=0.03, minimum=0.0)
    betas: tuple[float, float] = spec(
        list, default=(0.99, 0.99), item=Field(float, minimum=0.0, below=1.0), **_PAIR_RULES
    )
    eps: float = spec(float, default=1e-8, above=0.0)


@dataclass(frozen=True)
class LRSchedulerSection:
    name: str = spec(str, default="customized", choices=("customized",))
    warmup_steps: int = spec(int, default=5000, minimum=-1)  # <= 0: none (the reference's -1)


_AUTONAT_L = NAT_CONFIGS["AutoNAT-L"]


@dataclass(frozen=True)
class NnetSection(Mapping[str, Any]):
    """The NAT's constructor arguments; also a read-only mapping of them (without
    ``attention`` when it is not set), so ``NATransformer(**config.nnet)`` builds it."""

    img_size: int = spec(int, default=_AUTONAT_L["img_size"], minimum=1)
    codebook_size: int = spec(int, default=_AUTONAT_L["codebook_size"], minimum=1)
    embed_dim: int = spec(int, default=_AUTONAT_L["embed_dim"], minimum=1)
    depth: int = spec(int, default=_AUTONAT_L["depth"], minimum=0)
    num_heads: int = spec(int, default=_AUTONAT_L["num_heads"], minimum=1)
    mlp_ratio: float = spec(float, default=float(_AUTONAT_L["mlp_ratio"]), above=0.0)
    qkv_bias: bool = spec(bool, default=_AUTONAT_L["qkv_bias"])
    num_classes: int = spec(int, default=_AUTONAT_L["num_classes"], minimum=1)
    skip: bool = spec(bool, default=_AUTONAT_L["skip"])
    use_checkpoint: bool = spec(bool, default=False)
    attention: str | None = spec(str, default=None, choices=ATTENTION_BACKENDS)

    def _keys(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]

    def __getitem__(self, key: str) -> Any:
        if key not in self._keys():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())


@dataclass(frozen=True)
class MuseSection:
    ignore_ind: int = spec(int, default=-1)
    smoothing: float = spec(float, default=0.1, minimum=0.0, below=1.0)


@dataclass(frozen=True)
class DatasetSection:
    name: str = spec(str, default="imagenet256_features", nonempty=True)
    path: str = spec(str, default="assets/imagenet256_vq_features", nonempty=True)
    cfg: bool = spec(bool, default=True)
    p_uncond: float = spec(float, default=0.15, minimum=0.0, maximum=1.0)
    null_class: int | None = spec(int, default=None, minimum=0)


@dataclass(frozen=True)
class TrainConfig:
    """A validated pretraining config (the reference's sections)."""

    train: TrainSection = spec(TrainSection)
    optimizer: OptimizerSection = spec(OptimizerSection)
    lr_scheduler: LRSchedulerSection = spec(LRSchedulerSection)
    nnet: NnetSection = spec(NnetSection)
    muse: MuseSection = spec(MuseSection)
    dataset: DatasetSection = spec(DatasetSection)

    @property
    def null_class(self) -> int:
        nc = self.dataset.null_class
        return self.nnet.num_classes - 1 if nc is None else nc

    @property
    def seq_len(self) -> int:
        return self.nnet.img_size**2

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            section = getattr(self, f.name)
            items = section.items() if f.name == "nnet" else asdict(section).items()
            out[f.name] = {k: list(v) if isinstance(v, tuple) else v for k, v in items}
        return out


_NULL_MEANS_DEFAULT = {"train": ("out_dir",), "dataset": ("null_class",)}


def _file_layout(source: Mapping[Any, Any]) -> dict[Any, Any]:
    """The reference's spellings of "unset" mapped to ours, before the schema check."""
    data = dict(source)
    for section, keys in _NULL_MEANS_DEFAULT.items():
        raw = data.get(section)
        if isinstance(raw, Mapping):
            data[section] = {k: v for k, v in raw.items() if not (k in keys and v is None)}
    dataset = data.get("dataset")
    if isinstance(dataset, Mapping) and dataset.get("cfg") is False and (
        "p_uncond" in dataset and dataset["p_uncond"] is None
    ):
        data["dataset"] = {**dataset, "p_uncond": 0.0}  # the reference's layout without guidance
    return data


def load_train_config(source: str | Path | Mapping[str, Any] | TrainConfig) -> TrainConfig:
    """A validated config from a YAML file or a mapping; missing keys take the reference's
    values. Unknown keys and bad values raise ValueError naming ``section.key``."""
    if isinstance(source, TrainConfig):
        return source
    if isinstance(source, str | Path):
        path = Path(source).expanduser()
        if not path.is_file():
            raise ValueError(f"training config not found: {path}")
        source = yaml.safe_load(path.read_text()) or {}
    if not isinstance(source, Mapping):
        raise ValueError(f"a training config must be a mapping of sections, got {source!r}")
    config = parse(TrainConfig, _file_layout(source))
    nnet = config.nnet
    if nnet.embed_dim % nnet.num_heads:
        raise ValueError(f"nnet.embed_dim must be divisible by nnet.num_heads "
                         f"{nnet.num_heads}, got {nnet.embed_dim}")
    k, ignore = nnet.codebook_size, config.muse.ignore_ind
    if 0 <= ignore < k:
        raise ValueError(f"muse.ignore_ind must not be a code id (0..{k - 1}), got {ignore}")
    null = config.dataset.null_class
    if null is not None and null >= nnet.num_classes:
        raise ValueError(f"dataset.null_class must be below nnet.num_classes "
                         f"{nnet.num_classes}, got {null}")
    return config
