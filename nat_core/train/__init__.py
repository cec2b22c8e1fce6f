"""Pretraining a NAT on a token dataset with the reference's training strategy (SPEC 4).

    python -m nat_core.train pretrain CONFIG.yaml                        # CPU or one GPU
    torchrun --nproc_per_node=8 -m nat_core.train pretrain CONFIG.yaml
    torchrun --nnodes=2 --nproc_per_node=8 --rdzv-backend=c10d \\
        --rdzv-endpoint=HOST:29500 -m nat_core.train pretrain CONFIG.yaml
    python -m nat_core.train tokenize IMAGES_DIR -o OUT.npy --bundle BUNDLE.yaml

(``autonat-search pretrain`` and ``autonat-search tokenize`` call the same functions.)

Per sample: a mask ratio r ~ Beta(12, 3), ``max(1, round(L * r))`` tokens replaced by the
mask id at random positions, cross-entropy with label smoothing 0.1 on those positions
only, and the label replaced by the null class with probability ``p_uncond``. AdamW with a
linear warm-up, then a constant learning rate; an EMA copy of the weights.

The config is the reference's (``configs/AutoNAT_L.yaml``) plus optional keys; its keys,
defaults and checks are in ``nat_core.train.config``. Output, as the reference lays it out:
``{out_dir}/ckpts/{step}.ckpt/`` (``nat_core.train.checkpointing``); the final EMA weights
go to ``{out_dir}/nnet_ema.pth``. A run resumes from the latest complete checkpoint and then
matches an uninterrupted run.

Modules: ``config`` (the config file), ``masking`` (the objective), ``optimization``
(optimiser, warm-up, mixed precision, EMA), ``batches`` (data order), ``distributed`` (the
process group), ``checkpointing``, ``loop`` (``pretrain``), ``tokenize`` (images -> token
rows with a bundle's tokenizer), ``__main__`` (the command line).
"""

from nat_core.train.checkpointing import CKPT_FILES, latest_checkpoint
from nat_core.train.config import TrainConfig, load_train_config
from nat_core.train.loop import TrainProgress, pretrain
from nat_core.train.masking import drop_labels, mask_tokens, masked_token_loss, sample_mask_ratios
from nat_core.train.optimization import ema_update, warmup_lr
from nat_core.train.tokenize import tokenize_with_bundle

__all__ = [
    "CKPT_FILES",
    "TrainConfig",
    "TrainProgress",
    "drop_labels",
    "ema_update",
    "latest_checkpoint",
    "load_train_config",
    "mask_tokens",
    "masked_token_loss",
    "pretrain",
    "sample_mask_ratios",
    "tokenize_with_bundle",
    "warmup_lr",
]
