"""The pretraining config (SPEC 4): the reference's sections (``configs/AutoNAT_L.yaml``),
each key checked, with the reference's values for missing keys.

Our optional keys: ``train.ema`` (0.9999), ``train.seed`` (1234), ``train.out_dir``,
``train.mask_beta`` ([12, 3]), ``train.num_workers`` (2), ``train.mixed_precision`` ('no',
'bf16' or 'fp16'; CUDA only), ``optimizer.eps`` (1e-8) and ``dataset.null_class``
(``nnet.num_classes - 1``). ``dataset.path`` is a token ``.npy`` file or a folder holding
``train.npy``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from nat_core.model import ATTENTION_BACKENDS, NAT_CONFIGS

Check = Callable[[Any], Any]  # the value as stored, or _Bad(why)


class _Bad(Exception):
    pass


def _integer(minimum: int | None = None) -> Check:
    def check(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise _Bad("must be an integer")
        if minimum is not None and v < minimum:
            raise _Bad(f"must be >= {minimum}")
        return v

    return check


def _number(lo: float, hi: float = math.inf, *, open_lo: bool = False,
            open_hi: bool = False) -> Check:
    def check(v: Any) -> float:
        if isinstance(v, str):  # PyYAML reads 4e-4 (no dot) as a string
            try:
                v = float(v)
            except ValueError:
                raise _Bad("must be a number") from None
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise _Bad("must be a number")
        v = float(v)
        if not (math.isfinite(v) and (lo < v if open_lo else lo <= v)
                and (v < hi if open_hi else v <= hi)):
            raise _Bad(f"must lie in {'(' if open_lo else '['}{lo}, {hi}{')' if open_hi else ']'}")
        return v

    return check


def _pair(item: Check) -> Check:
    def check(v: Any) -> tuple[Any, Any]:
        if not isinstance(v, list | tuple) or len(v) != 2:
            raise _Bad("must be a list of two numbers")
        try:
            return item(v[0]), item(v[1])
        except _Bad as exc:
            raise _Bad(f"must hold two numbers that each {exc}") from None

    return check


def _one_of(*choices: str) -> Check:
    def check(v: Any) -> str:
        if v not in choices:
            raise _Bad(f"must be one of {list(choices)}")
        return v

    return check


def _boolean(v: Any) -> bool:
    if not isinstance(v, bool):
        raise _Bad("must be true or false")
    return v


def _text(v: Any) -> str:
    if not isinstance(v, str | Path) or not str(v):
        raise _Bad("must be a non-empty string")
    return str(v)


def _optional(check: Check) -> Check:
    return lambda v: None if v is None else check(v)


def _key(default: Any, check: Check) -> Any:
    return field(default=default, metadata={"check": check})


@dataclass(frozen=True)
class TrainSection:
    n_steps: int = _key(500_000, _integer(0))
    batch_size: int = _key(2048, _integer(1))
    log_interval: int = _key(50, _integer(1))
    save_interval: int = _key(5000, _integer(1))
    ema: float = _key(0.9999, _number(0.0, 1.0))
    seed: int = _key(1234, _integer(0))
    out_dir: str | None = _key(None, _optional(_text))
    mask_beta: tuple[float, float] = _key((12.0, 3.0), _pair(_number(0.0, open_lo=True)))
    num_workers: int = _key(2, _integer(0))
    mixed_precision: str = _key("no", _one_of("no", "bf16", "fp16"))


@dataclass(frozen=True)
class OptimizerSection:
    name: str = _key("adamw", _one_of("adamw", "adam"))
    lr: float = _key(4e-4, _number(0.0, open_lo=True))
    weight_decay: float = _key(0.03, _number(0.0))
    betas: tuple[float, float] = _key((0.99, 0.99), _pair(_number(0.0, 1.0, open_hi=True)))
    eps: float = _key(1e-8, _number(0.0, open_lo=True))


@dataclass(frozen=True)
class LRSchedulerSection:
    name: str = _key("customized", _one_of("customized"))
    warmup_steps: int = _key(5000, _integer(-1))  # <= 0: none (the reference's default -1)


@dataclass(frozen=True)
class MuseSection:
    ignore_ind: int = _key(-1, _integer())
    smoothing: float = _key(0.1, _number(0.0, 1.0, open_hi=True))


@dataclass(frozen=True)
class DatasetSection:
    name: str = _key("imagenet256_features", _text)
    path: str = _key("assets/imagenet256_vq_features", _text)
    cfg: bool = _key(True, _boolean)
    p_uncond: float = _key(0.15, _number(0.0, 1.0))
    null_class: int | None = _key(None, _optional(_integer(0)))


_NNET_CHECKS: dict[str, Check] = {
    "img_size": _integer(1), "codebook_size": _integer(1), "embed_dim": _integer(1),
    "depth": _integer(0), "num_heads": _integer(1), "mlp_ratio": _number(0.0, open_lo=True),
    "qkv_bias": _boolean, "num_classes": _integer(1), "skip": _boolean,
    "use_checkpoint": _boolean, "attention": _one_of(*ATTENTION_BACKENDS),
}
_DEFAULT_NNET: dict[str, Any] = {**NAT_CONFIGS["AutoNAT-L"], "use_checkpoint": False}


@dataclass(frozen=True)
class TrainConfig:
    """A validated pretraining config (the reference's sections)."""

    train: TrainSection = field(default_factory=TrainSection)
    optimizer: OptimizerSection = field(default_factory=OptimizerSection)
    lr_scheduler: LRSchedulerSection = field(default_factory=LRSchedulerSection)
    nnet: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType(dict(_DEFAULT_NNET)))
    muse: MuseSection = field(default_factory=MuseSection)
    dataset: DatasetSection = field(default_factory=DatasetSection)

    @property
    def null_class(self) -> int:
        nc = self.dataset.null_class
        return self.nnet["num_classes"] - 1 if nc is None else nc

    @property
    def seq_len(self) -> int:
        return self.nnet["img_size"] ** 2

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            section = getattr(self, f.name)
            items = section.items() if f.name == "nnet" else asdict(section).items()
            out[f.name] = {k: list(v) if isinstance(v, tuple) else v for k, v in items}
        return out


def _read(name: str, raw: Any, checks: Mapping[str, Check],
          defaults: Mapping[str, Any]) -> dict[str, Any]:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ValueError(f"config section {name!r} must be a mapping, got {raw!r}")
    unknown = sorted(set(raw) - set(checks), key=str)
    if unknown:
        raise ValueError(f"unknown config key {name}.{unknown[0]}; known keys of {name!r}: "
                         f"{sorted(checks)}")
    values = {}
    for key, check in checks.items():
        if key in raw or key in defaults:
            value = raw.get(key, defaults.get(key))
            try:
                values[key] = check(value)
            except _Bad as exc:
                raise ValueError(f"{name}.{key} {exc}, got {value!r}") from None
    return values


def _read_section(cls: type, name: str, raw: Any) -> Any:
    checks = {f.name: f.metadata["check"] for f in fields(cls)}
    return cls(**_read(name, raw, checks, {f.name: f.default for f in fields(cls)}))


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
    sections = [f.name for f in fields(TrainConfig)]
    unknown = sorted(set(source) - set(sections), key=str)
    if unknown:
        raise ValueError(f"unknown config section {unknown[0]!r}; known: {sections}")
    dataset_raw = dict(source.get("dataset") or {})
    if dataset_raw.get("cfg") is False and dataset_raw.get("p_uncond", 0.0) is None:
        dataset_raw["p_uncond"] = 0.0  # the reference's layout without guidance
    nnet = _read("nnet", source.get("nnet"), _NNET_CHECKS, _DEFAULT_NNET)
    config = TrainConfig(
        train=_read_section(TrainSection, "train", source.get("train")),
        optimizer=_read_section(OptimizerSection, "optimizer", source.get("optimizer")),
        lr_scheduler=_read_section(LRSchedulerSection, "lr_scheduler", source.get("lr_scheduler")),
        nnet=MappingProxyType(nnet),
        muse=_read_section(MuseSection, "muse", source.get("muse")),
        dataset=_read_section(DatasetSection, "dataset", dataset_raw),
    )
    if nnet["embed_dim"] % nnet["num_heads"]:
        raise ValueError(f"nnet.embed_dim must be divisible by nnet.num_heads "
                         f"{nnet['num_heads']}, got {nnet['embed_dim']}")
    k, ignore = nnet["codebook_size"], config.muse.ignore_ind
    if 0 <= ignore < k:
        raise ValueError(f"muse.ignore_ind must not be a code id (0..{k - 1}), got {ignore}")
    null = config.dataset.null_class
    if null is not None and null >= nnet["num_classes"]:
        raise ValueError(f"dataset.null_class must be below nnet.num_classes "
                         f"{nnet['num_classes']}, got {null}")
    return config
