"""A generator bundle loaded onto a device: strategy + labels + noise -> images -> features."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from nat_core.bundle import BundleError, BundleSpec, build_component, read_bundle, token_decoder
from nat_core.compiled import CompiledModule
from nat_core.fid import FeatureStats, feature_dim_of, fid_from_stats, load_reference_stats
from nat_core.image_path import (
    FastDecoder,
    decode_tokens,
    micro_batches,
    standard_features,
    tokens_to_features,
)
from nat_core.sampler import generate_tokens
from nat_core.speed import SpeedOptions, to_device_async
from nat_core.strategy import GenerationStrategy

__all__ = ["AUTOCAST_DTYPES", "GeneratorBundle", "Precision", "autocast_dtype", "load_bundle"]

Precision = Literal["fp32", "bf16", "fp16"]
AUTOCAST_DTYPES: dict[str, torch.dtype | None] = {
    "fp32": None,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}


def autocast_dtype(precision: Precision) -> torch.dtype | None:
    if precision not in AUTOCAST_DTYPES:
        raise ValueError(f"precision must be one of {sorted(AUTOCAST_DTYPES)}, got {precision!r}")
    return AUTOCAST_DTYPES[precision]


@dataclass
class GeneratorBundle:
    spec: BundleSpec
    model: nn.Module
    tokenizer: nn.Module
    features: nn.Module
    reference_mu: Tensor
    reference_sigma: Tensor
    device: torch.device
    mask_id: int
    speed: SpeedOptions = field(default_factory=SpeedOptions)
    token_model: nn.Module | CompiledModule = field(init=False, repr=False)
    fast_decoder: FastDecoder = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Made once per loaded bundle: compiled kernels are reused by every later trial.
        self.token_model = (
            CompiledModule(
                self.model, mode=self.speed.compile_mode, backend=self.speed.compile_backend
            )
            if self.speed.compile_model
            else self.model
        )
        self.fast_decoder = FastDecoder(
            token_decoder(self.tokenizer, self.spec.tokenizer.kind), self.speed
        )

    @property
    def feature_dim(self) -> int:
        return feature_dim_of(self.features)

    @torch.inference_mode()
    def generate_tokens(
        self,
        strategy: GenerationStrategy,
        labels: Tensor,
        generator: torch.Generator | Sequence[torch.Generator],
        *,
        precision: Precision = "fp32",
    ) -> Tensor:
        return generate_tokens(
            self.token_model,
            strategy,
            to_device_async(labels, self.device),
            seq_len=self.spec.seq_len,
            mask_id=self.mask_id,
            null_label=self.spec.null_class,
            generator=generator,
            autocast_dtype=autocast_dtype(precision),
        )

    @torch.inference_mode()
    def decode(self, tokens: Tensor, *, precision: Precision = "fp32") -> Tensor:
        """Token ids (B, L) -> images (B, 3, H, W) clamped to [0, 1], decoded in
        micro-batches of ``speed.decode_batch``."""
        dtype = autocast_dtype(precision)
        side = self.spec.tokens_per_side
        parts = [
            decode_tokens(self.fast_decoder, part, tokens_per_side=side, autocast_dtype=dtype)
            for part in micro_batches(tokens, self.speed.decode_batch)
        ]
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    @torch.inference_mode()
    def sample_images(
        self,
        strategy: GenerationStrategy,
        labels: Tensor,
        generator: torch.Generator | Sequence[torch.Generator],
        *,
        precision: Precision = "fp32",
    ) -> Tensor:
        tokens = self.generate_tokens(strategy, labels, generator, precision=precision)
        return self.decode(tokens, precision=precision)

    @torch.inference_mode()
    def image_features(self, images: Tensor) -> Tensor:
        """Features of images in [0, 1], always in fp32: the standard FID, whatever the
        study's precision (that applies to the NAT and the tokenizer only)."""
        return standard_features(self.features, images.to(self.device))

    @torch.inference_mode()
    def sample_features(
        self,
        strategy: GenerationStrategy,
        labels: Tensor,
        generator: torch.Generator | Sequence[torch.Generator],
        *,
        precision: Precision = "fp32",
    ) -> Tensor:
        """Tokens -> decode -> clamp to [0, 1] -> features (B, D), decoded and featurised
        per micro-batch of ``speed.decode_batch`` images (bounded memory)."""
        tokens = self.generate_tokens(strategy, labels, generator, precision=precision)
        return tokens_to_features(
            self.fast_decoder,
            self.features,
            tokens,
            tokens_per_side=self.spec.tokens_per_side,
            autocast_dtype=autocast_dtype(precision),
            decode_batch=self.speed.decode_batch,
        )

    def empty_stats(self) -> FeatureStats:
        return FeatureStats.empty(self.feature_dim, device=self.device)

    def fid(self, stats: FeatureStats) -> float:
        """FID of ``stats`` against the bundle's reference statistics."""
        return fid_from_stats(stats, self.reference_mu, self.reference_sigma)


@runtime_checkable
class _SwitchableAttention(Protocol):
    def set_attention(self, backend: str) -> None: ...


def _check_fit(spec: BundleSpec, model: nn.Module, tokenizer: nn.Module) -> int:
    where = str(spec.path)
    try:
        token_decoder(tokenizer, spec.tokenizer.kind)
    except BundleError as error:
        raise BundleError(f"{where}: {error}") from None
    codebook = getattr(model, "codebook_size", None)
    if not isinstance(codebook, int):
        raise BundleError(f"{where}: model {spec.model.kind} must expose an int codebook_size")
    mask_id = int(getattr(model, "mask_id", codebook))
    token_codebook = getattr(tokenizer, "codebook_size", None)
    if token_codebook is not None and token_codebook != codebook:
        raise BundleError(
            f"{where}: tokenizer has {token_codebook} codes, model.codebook_size is {codebook}"
        )
    seq_len = getattr(model, "seq_len", None)
    if seq_len is not None and seq_len != spec.seq_len:
        raise BundleError(
            f"{where}: tokens_per_side {spec.tokens_per_side} gives {spec.seq_len} tokens, "
            f"the model takes {seq_len}"
        )
    num_classes = getattr(model, "num_classes", None)
    if num_classes is not None and spec.null_class >= num_classes:
        raise BundleError(
            f"{where}: classes {spec.classes} with null_class {spec.null_class} need "
            f"{spec.null_class + 1} class embeddings, the model has num_classes {num_classes}"
        )
    return mask_id


def load_bundle(
    bundle: str | Path | BundleSpec,
    *,
    device: str | torch.device = "cpu",
    attention: str | None = None,
    speed: SpeedOptions | None = None,
) -> GeneratorBundle:
    """Build, load and check every part on the CPU, then move it to ``device``; ``speed``
    says how it runs there (compiled model and decoder, channels-last, decode micro-batch;
    all off by default)."""
    spec = bundle if isinstance(bundle, BundleSpec) else read_bundle(bundle)
    model = build_component(spec.model, "model")
    tokenizer = build_component(spec.tokenizer, "tokenizer")
    features = build_component(spec.features, "features")
    mask_id = _check_fit(spec, model, tokenizer)
    try:
        mu, sigma = load_reference_stats(spec.reference_stats, feature_dim=feature_dim_of(features))
    except ValueError as error:
        raise BundleError(f"{spec.path}: {error}") from None
    if attention is not None:
        if not isinstance(model, _SwitchableAttention):
            raise BundleError(f"{spec.path}: model {spec.model.kind} has no attention backends")
        model.set_attention(attention)
    device = torch.device(device)
    for module in (model, tokenizer, features):
        module.requires_grad_(False)
        module.to(device)
    return GeneratorBundle(
        spec=spec,
        model=model,
        tokenizer=tokenizer,
        features=features,
        reference_mu=torch.as_tensor(mu, dtype=torch.float64, device=device),
        reference_sigma=torch.as_tensor(sigma, dtype=torch.float64, device=device),
        device=device,
        mask_id=mask_id,
        speed=speed or SpeedOptions(),
    )
