"""VQGAN tokenizer of MaskGIT/MAGE (the one AutoNAT uses), in taming-transformers key naming.

Checkpoint-compatible with ``vqgan_jax_strongaug.ckpt``. It differs from the stock taming VQGAN:
no attention blocks (``attn_resolutions`` is accepted and ignored), no quant/post-quant convs,
bias-free convs inside residual blocks and in the encoder's ``conv_in``, a 1x1 shortcut that maps
out->out and is applied to the block's output when the width changes, 2x2 average pooling to
downsample, nearest-neighbour upsampling followed by a 3x3 conv, and a 1x1 encoder ``conv_out``.
Images are in [0, 1]; neither ``encode`` nor ``decode`` clamps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nat_core.checkpoints import StateSource, load_strict

__all__ = ["VQGAN", "VQGAN_CONFIGS", "build_vqgan", "load_vqgan_checkpoint"]

VQGAN_CONFIGS: dict[str, dict[str, Any]] = {
    "vqgan-f16-1024": {
        "ddconfig": {
            "double_z": False,
            "z_channels": 256,
            "resolution": 256,
            "in_channels": 3,
            "out_ch": 3,
            "ch": 128,
            "ch_mult": [1, 1, 2, 2, 4],
            "num_res_blocks": 2,
            "attn_resolutions": [16],
            "dropout": 0.0,
        },
        "n_embed": 1024,
        "embed_dim": 256,
    },
}


@dataclass(frozen=True)
class _DDConfig:
    z_channels: int
    in_channels: int
    out_ch: int
    ch: int
    ch_mult: tuple[int, ...]
    num_res_blocks: int
    resolution: int | None = None
    double_z: bool = False
    attn_resolutions: tuple[int, ...] = ()
    dropout: float = 0.0


_REQUIRED_KEYS = ("z_channels", "in_channels", "out_ch", "ch", "ch_mult", "num_res_blocks")
_ALL_KEYS = frozenset(_DDConfig.__dataclass_fields__)


def _parse_ddconfig(cfg: Mapping[str, Any]) -> _DDConfig:
    unknown = sorted(set(cfg) - _ALL_KEYS)
    if unknown:
        raise ValueError(f"unknown ddconfig key(s): {', '.join(map(repr, unknown))}")
    missing = [k for k in _REQUIRED_KEYS if k not in cfg]
    if missing:
        raise ValueError(f"missing ddconfig key(s): {', '.join(map(repr, missing))}")
    values = dict(cfg)
    values["ch_mult"] = tuple(int(m) for m in values["ch_mult"])
    values["attn_resolutions"] = tuple(int(r) for r in values.get("attn_resolutions", ()))
    config = _DDConfig(**values)
    if not config.ch_mult:
        raise ValueError(f"ch_mult must not be empty, got {cfg['ch_mult']!r}")
    if config.num_res_blocks < 1:
        raise ValueError(f"num_res_blocks must be >= 1, got {config.num_res_blocks!r}")
    return config


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=32, num_channels=channels, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    """norm-swish-conv twice (bias-free convs) plus a residual.

    Same width: ``x + h``. Width change: there is no path from the input; the output is
    ``nin_shortcut(h) + h`` with a bias-free 1x1 ``out -> out`` conv (a quirk of the checkpoint).
    """

    def __init__(self, in_channels: int, out_channels: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = _norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.norm2 = _norm(out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.nin_shortcut: nn.Conv2d | None = None
        if in_channels != out_channels:
            self.nin_shortcut = nn.Conv2d(out_channels, out_channels, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        if self.nin_shortcut is not None:
            return self.nin_shortcut(h) + h
        return x + h


class _MidBlock(nn.Module):
    def __init__(self, channels: int, dropout: float) -> None:
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels, dropout)
        self.block_2 = ResnetBlock(channels, channels, dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.block_2(self.block_1(x))


class Upsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class _Level(nn.Module):
    """One resolution level: residual blocks (``block``), then an optional ``upsample``
    (decoder levels above the lowest resolution)."""

    def __init__(self, blocks: list[ResnetBlock], upsample: Upsample | None = None) -> None:
        super().__init__()
        self.block = nn.ModuleList(blocks)
        self.upsample = upsample

    def forward(self, h: Tensor) -> Tensor:
        for block in self.block:
            h = block(h)
        return h if self.upsample is None else self.upsample(h)


class Encoder(nn.Module):
    def __init__(self, cfg: _DDConfig) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(cfg.in_channels, cfg.ch, 3, padding=1, bias=False)
        self.down = nn.ModuleList()
        channels = cfg.ch
        for mult in cfg.ch_mult:
            blocks = []
            for _ in range(cfg.num_res_blocks):
                blocks.append(ResnetBlock(channels, cfg.ch * mult, cfg.dropout))
                channels = cfg.ch * mult
            self.down.append(_Level(blocks))
        self.mid = _MidBlock(channels, cfg.dropout)
        self.norm_out = _norm(channels)
        self.conv_out = nn.Conv2d(channels, cfg.z_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv_in(x)
        for i, level in enumerate(self.down):
            h = level(h)
            if i != len(self.down) - 1:
                h = F.avg_pool2d(h, kernel_size=2, stride=2)
        h = self.mid(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, cfg: _DDConfig) -> None:
        super().__init__()
        channels = cfg.ch * cfg.ch_mult[-1]
        self.conv_in = nn.Conv2d(cfg.z_channels, channels, 3, padding=1)
        self.mid = _MidBlock(channels, cfg.dropout)
        # Built from the lowest resolution up, stored so that up[i] matches encoder level i.
        levels: list[nn.Module] = []
        for i in reversed(range(len(cfg.ch_mult))):
            blocks = []
            for _ in range(cfg.num_res_blocks):
                blocks.append(ResnetBlock(channels, cfg.ch * cfg.ch_mult[i], cfg.dropout))
                channels = cfg.ch * cfg.ch_mult[i]
            levels.insert(0, _Level(blocks, Upsample(channels) if i != 0 else None))
        self.up = nn.ModuleList(levels)
        self.norm_out = _norm(channels)
        self.conv_out = nn.Conv2d(channels, cfg.out_ch, 3, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        h = self.mid(self.conv_in(z))
        for level in reversed(self.up):
            h = level(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class VectorQuantizer(nn.Module):
    """Codebook lookup: codes are the nearest entries in L2."""

    def __init__(self, n_embed: int, embed_dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(n_embed, embed_dim)

    def codes(self, z: Tensor) -> Tensor:
        """(B, C, h, w) latents -> (B, h, w) code indices."""
        b, c, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, c)
        weight = self.embedding.weight
        dist = (
            flat.pow(2).sum(dim=1, keepdim=True)
            + weight.pow(2).sum(dim=1)
            - 2.0 * flat @ weight.t()
        )
        return dist.argmin(dim=1).view(b, h, w)

    def latents(self, codes: Tensor) -> Tensor:
        """(B, h, w) code indices -> (B, C, h, w) codebook entries."""
        return self.embedding(codes).permute(0, 3, 1, 2).contiguous()


class VQGAN(nn.Module):
    def __init__(
        self,
        *,
        ddconfig: Mapping[str, Any] | None = None,
        n_embed: int,
        embed_dim: int,
        **ddconfig_kwargs: Any,
    ) -> None:
        super().__init__()
        merged = dict(ddconfig or {})
        clash = sorted(set(merged) & set(ddconfig_kwargs))
        if clash:
            raise ValueError(f"ddconfig key(s) given twice: {', '.join(map(repr, clash))}")
        merged.update(ddconfig_kwargs)
        cfg = _parse_ddconfig(merged)
        # Without a quant_conv the encoder output is quantized directly, so its width must be
        # embed_dim; double_z=True (2 * z_channels outputs) can therefore never fit.
        if cfg.double_z:
            raise ValueError("double_z=True is not supported: this VQGAN has no quant_conv")
        if embed_dim != cfg.z_channels:
            raise ValueError(f"embed_dim {embed_dim!r} must equal z_channels {cfg.z_channels!r}")
        if n_embed < 1:
            raise ValueError(f"n_embed must be >= 1, got {n_embed!r}")
        self.config = cfg
        self.n_embed = n_embed
        self.embed_dim = embed_dim
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.quantize = VectorQuantizer(n_embed, embed_dim)

    @property
    def ddconfig(self) -> dict[str, Any]:
        values = asdict(self.config)
        values["ch_mult"] = list(values["ch_mult"])
        values["attn_resolutions"] = list(values["attn_resolutions"])
        return values

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.config.ch_mult) - 1)

    @property
    def codebook_size(self) -> int:
        return self.n_embed

    def encode_latents(self, images: Tensor) -> Tensor:
        """(B, in_channels, H, W) images -> (B, embed_dim, H/f, W/f) unquantized latents."""
        if images.ndim != 4 or images.shape[1] != self.config.in_channels:
            raise ValueError(
                f"images must have shape (B, {self.config.in_channels}, H, W), "
                f"got {tuple(images.shape)}"
            )
        f = self.downsample_factor
        if images.shape[2] % f or images.shape[3] % f:
            raise ValueError(
                f"image size {tuple(images.shape[2:])} is not divisible by the "
                f"downsample factor {f}"
            )
        return self.encoder(images)

    def encode(self, images: Tensor) -> Tensor:
        """(B, in_channels, H, W) images in [0, 1] -> (B, H/f, W/f) int64 codes."""
        return self.quantize.codes(self.encode_latents(images))

    def decode_latents(self, latents: Tensor) -> Tensor:
        """(B, embed_dim, h, w) latents -> (B, out_ch, h*f, w*f) images, not clamped."""
        return self.decoder(latents)

    def check_codes(self, codes: Tensor) -> None:
        """Shape and dtype, then the range [0, n_embed).

        On the CPU a code out of range is a ValueError. On an accelerator, reading the range
        back would make the host wait for every kernel queued before it (a host
        synchronisation per batch), so the check is queued on the device instead
        (``torch._assert_async``): a bad code fails the run at its next synchronisation with
        a device-side assert, and the CUDA context is lost. The project's own sampler only
        produces codes in range.
        """
        if codes.ndim != 3:
            raise ValueError(f"codes must have shape (B, h, w), got {tuple(codes.shape)}")
        if codes.dtype.is_floating_point or codes.dtype.is_complex or codes.dtype == torch.bool:
            raise ValueError(f"codes must be an integer tensor, got dtype {codes.dtype}")
        if codes.device.type != "cpu":
            in_range = ((codes >= 0) & (codes < self.n_embed)).all()
            torch._assert_async(in_range, f"VQGAN codes must lie in [0, {self.n_embed})")
        elif codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.n_embed):
            raise ValueError(
                f"codes must lie in [0, {self.n_embed}), got range "
                f"[{int(codes.min())}, {int(codes.max())}]"
            )

    def decode(self, codes: Tensor) -> Tensor:
        """(B, h, w) integer codes -> (B, out_ch, h*f, w*f) images, not clamped."""
        self.check_codes(codes)
        return self.decode_latents(self.quantize.latents(codes.long()))


def build_vqgan(name: str) -> VQGAN:
    if name not in VQGAN_CONFIGS:
        raise ValueError(f"unknown VQGAN config {name!r}; known: {sorted(VQGAN_CONFIGS)}")
    cfg = VQGAN_CONFIGS[name]
    return VQGAN(ddconfig=cfg["ddconfig"], n_embed=cfg["n_embed"], embed_dim=cfg["embed_dim"])


def load_vqgan_checkpoint(model: VQGAN, source: StateSource) -> VQGAN:
    """Strictly load a checkpoint file or state dict (optionally nested under ``state_dict``)."""
    load_strict(model, source, what="VQGAN checkpoint")
    return model
