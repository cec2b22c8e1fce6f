"""The NAT transformer (a U-ViT over token ids), checkpoint-compatible with AutoNAT.

``model(ids, labels)`` takes token ids (B, L) with the mask id = ``codebook_size`` and
class labels (B,) and returns logits (B, L, codebook_size). Parameter names follow the
reference, so its ``nnet_ema.pth`` loads with ``strict=True``.
"""

from __future__ import annotations

import importlib.util
from typing import Any, Literal

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import Tensor, nn

from nat_core.checkpoints import StateSource, load_strict

__all__ = [
    "ATTENTION_BACKENDS",
    "NAT_CONFIGS",
    "NATransformer",
    "build_nat",
    "load_nat_checkpoint",
    "xformers_available",
]

AttentionBackend = Literal["sdpa", "xformers", "math"]
ATTENTION_BACKENDS: tuple[str, ...] = ("sdpa", "xformers", "math")

NAT_CONFIGS: dict[str, dict[str, Any]] = {
    "AutoNAT-L": dict(
        img_size=16,
        codebook_size=1024,
        embed_dim=768,
        depth=24,
        num_heads=8,
        mlp_ratio=4,
        qkv_bias=False,
        num_classes=1001,
        skip=True,
    ),
}


def xformers_available() -> bool:
    return importlib.util.find_spec("xformers") is not None


class TokenEmbedding(nn.Module):
    """Word + learned position embedding, LayerNorm, dropout (the reference's BertEmbeddings)."""

    def __init__(self, vocab_size: int, dim: int, positions: int, dropout: float) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab_size, dim)
        self.position_embeddings = nn.Embedding(positions, dim)
        self.LayerNorm = nn.LayerNorm(dim, eps=1e-6)
        self.dropout = nn.Dropout(dropout)
        nn.init.normal_(self.word_embeddings.weight, std=0.02)
        nn.init.normal_(self.position_embeddings.weight, std=0.02)

    def forward(self, ids: Tensor) -> Tensor:
        x = self.word_embeddings(ids) + self.position_embeddings.weight[: ids.shape[1]]
        return self.dropout(self.LayerNorm(x))


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int, qkv_bias: bool) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed_dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.backend: AttentionBackend = "sdpa"

    def forward(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).view(b, n, 3, self.num_heads, d // self.num_heads)
        if self.backend == "xformers":
            import xformers.ops

            q, k, v = qkv.unbind(2)  # (B, N, H, Dh), the layout xformers expects
            out = xformers.ops.memory_efficient_attention(q, k, v).reshape(b, n, d)
            return self.proj(out)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # (B, H, N, Dh)
        if self.backend == "sdpa":
            out = F.scaled_dot_product_attention(q, k, v)
        else:
            weights = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5
            out = weights.softmax(dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block; an "out" block first fuses its long skip connection."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float,
        qkv_bias: bool,
        *,
        skip: bool = False,
        use_checkpoint: bool = False,
    ) -> None:
        super().__init__()
        self.skip_linear = nn.Linear(2 * dim, dim) if skip else None
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.use_checkpoint = use_checkpoint

    def forward(self, x: Tensor, skip: Tensor | None = None) -> Tensor:
        if self.use_checkpoint and self.training:
            return torch.utils.checkpoint.checkpoint(self._forward, x, skip, use_reentrant=False)
        return self._forward(x, skip)

    def _forward(self, x: Tensor, skip: Tensor | None) -> Tensor:
        if self.skip_linear is not None:
            if skip is None:
                raise ValueError("a block with a long skip connection needs its skip input")
            x = self.skip_linear(torch.cat([x, skip], dim=-1))
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class MlmHead(nn.Module):
    """fc, GELU, LayerNorm, then a product with the (detached) token embedding matrix."""

    def __init__(self, dim: int, vocab_size: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, dim)
        self.gelu = nn.GELU()
        self.ln = nn.LayerNorm(dim)
        self.bias = nn.Parameter(torch.zeros(1, 1, vocab_size))

    def forward(self, x: Tensor, embedding: Tensor, n_out: int) -> Tensor:
        h = self.ln(self.gelu(self.fc(x)))
        return h @ embedding[:n_out].detach().t() + self.bias[..., :n_out]


class NATransformer(nn.Module):
    """The AutoNAT network; constructor arguments are the reference config's ``nnet`` keys."""

    def __init__(
        self,
        *,
        img_size: int = 16,
        codebook_size: int = 1024,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = False,
        num_classes: int = 1001,
        skip: bool = True,
        use_checkpoint: bool = False,
        attention: AttentionBackend = "sdpa",
    ) -> None:
        super().__init__()
        for name, value in (
            ("img_size", img_size),
            ("codebook_size", codebook_size),
            ("embed_dim", embed_dim),
            ("num_classes", num_classes),
        ):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.codebook_size = codebook_size
        self.num_classes = num_classes
        self.seq_len = img_size * img_size
        self.token_emb = TokenEmbedding(codebook_size + 1, embed_dim, self.seq_len, dropout=0.1)
        self.context_embed = TokenEmbedding(num_classes, embed_dim, 1, dropout=0.0)
        block_args = (embed_dim, num_heads, mlp_ratio, qkv_bias)
        self.in_blocks = nn.ModuleList(
            Block(*block_args, use_checkpoint=use_checkpoint) for _ in range(depth // 2)
        )
        self.mid_block = Block(*block_args, use_checkpoint=use_checkpoint)
        self.out_blocks = nn.ModuleList(
            Block(*block_args, skip=skip, use_checkpoint=use_checkpoint) for _ in range(depth // 2)
        )
        self.skip = skip
        self.norm = nn.LayerNorm(embed_dim)
        self.mlm_layer = MlmHead(embed_dim, codebook_size + 1)
        self.apply(_init_weights)
        self.set_attention(attention)

    @property
    def mask_id(self) -> int:
        return self.codebook_size

    def set_attention(self, backend: AttentionBackend) -> None:
        if backend not in ATTENTION_BACKENDS:
            raise ValueError(f"attention must be one of {ATTENTION_BACKENDS}, got {backend!r}")
        if backend == "xformers" and not xformers_available():
            raise ValueError("attention 'xformers' asked for, but xformers is not installed")
        for module in self.modules():
            if isinstance(module, Attention):
                module.backend = backend

    def forward(self, ids: Tensor, labels: Tensor) -> Tensor:
        if ids.dim() != 2 or labels.shape != ids.shape[:1]:
            raise ValueError(
                f"expected ids (B, L) and labels (B,), got {tuple(ids.shape)} and "
                f"{tuple(labels.shape)}"
            )
        x = torch.cat([self.context_embed(labels[:, None]), self.token_emb(ids)], dim=1)
        skips = []
        for block in self.in_blocks:
            x = block(x)
            skips.append(x)
        x = self.mid_block(x)
        for block in self.out_blocks:
            x = block(x, skips.pop() if self.skip else None)
        x = self.norm(x[:, 1:])
        return self.mlm_layer(x, self.token_emb.word_embeddings.weight, self.codebook_size)


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def build_nat(name: str, **overrides: Any) -> NATransformer:
    if name not in NAT_CONFIGS:
        raise ValueError(f"unknown NAT size {name!r}; known: {sorted(NAT_CONFIGS)}")
    return NATransformer(**{**NAT_CONFIGS[name], **overrides})


def load_nat_checkpoint(model: NATransformer, source: StateSource) -> None:
    """Strict load of a reference (or our own) checkpoint; ignores a stray ``position_ids``."""
    load_strict(model, source, what="NAT checkpoint", ignore_suffixes=("position_ids",))
