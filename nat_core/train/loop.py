"""``pretrain``: a NAT trained on a token dataset with the reference's strategy (SPEC 4).

A run: check that the data fits the run, find the checkpoint to resume from, build the
model, optimiser and EMA copy (restoring them from the checkpoint), wrap the model for DDP,
then perform the updates, reporting and checkpointing as configured, and write the final
EMA weights. Everything random is seeded from ``train.seed`` through
``nat_core.seeding.derive_seed``: the data order and the masking draws are functions of
(seed, step, rank), dropout of (seed, rank) and the RNG state saved with each checkpoint.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import yaml
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from nat_core.data import TokenDataset
from nat_core.model import NATransformer
from nat_core.seeding import derive_seed
from nat_core.train.batches import step_batch_loader
from nat_core.train.checkpointing import (
    latest_checkpoint,
    restore_ema_and_rng,
    restore_training,
    save_checkpoint,
    write_atomically,
)
from nat_core.train.config import TrainConfig, load_train_config
from nat_core.train.distributed import Process, all_gather, barrier, joined_process_group
from nat_core.train.masking import drop_labels, mask_tokens, masked_token_loss
from nat_core.train.optimization import (
    MixedPrecision,
    build_optimizer,
    ema_update,
    set_learning_rate,
    warmup_lr,
)

__all__ = ["TrainProgress", "pretrain"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainProgress:
    """What a ``pretrain`` callback receives on every rank at each log step and at the end."""

    step: int
    loss: float  # mean over the ranks and the updates since the previous report
    lr: float
    rank: int
    world_size: int
    nnet: NATransformer
    nnet_ema: NATransformer


ProgressCallback = Callable[[TrainProgress], None]


def pretrain(
    config: TrainConfig | str | Path | Mapping[str, Any],
    *,
    dataset_path: str | Path | None = None,
    out_dir: str | Path | None = None,
    resume: bool = True,
    device: str | None = None,
    max_steps: int | None = None,
    progress: bool = True,
    ema_path: str | Path | None = None,
    callback: ProgressCallback | None = None,
) -> Path:
    """Train (or continue training) a NAT; returns the path of the final ``nnet_ema.pth``.

    ``out_dir`` defaults to ``train.out_dir``; ``dataset_path`` overrides ``dataset.path``;
    ``max_steps`` overrides ``train.n_steps`` (the update count to stop at).
    With ``resume`` the latest checkpoint under ``out_dir`` is continued; without it an
    ``out_dir`` that already holds checkpoints is an error. Under torchrun (WORLD_SIZE > 1)
    each process trains its share of every batch with DistributedDataParallel; rank 0
    alone writes files.
    """
    cfg = load_train_config(config)
    out = out_dir if out_dir is not None else cfg.train.out_dir
    if out is None:
        raise ValueError("no output folder: pass out_dir or set train.out_dir")
    target = cfg.train.n_steps if max_steps is None else max_steps
    if isinstance(target, bool) or not isinstance(target, int) or target < 0:
        raise ValueError(f"max_steps must be an integer >= 0, got {max_steps!r}")
    tokens = TokenDataset(dataset_path or cfg.dataset.path, seq_len=cfg.seq_len)
    run = _Run(
        cfg,
        tokens,
        Path(out).expanduser(),
        target=target,
        progress=progress,
        callback=callback,
        ema_path=None if ema_path is None else Path(ema_path).expanduser(),
    )
    with joined_process_group(device) as process:
        dev = process.device
        fork = [dev.index] if dev.type == "cuda" else []
        with torch.random.fork_rng(devices=fork, device_type=dev.type):
            return run.train(process, resume=resume)


@dataclass
class _Model:
    """What the updates change: the weights, their EMA copy, the optimiser, the step."""

    nnet: NATransformer
    nnet_ema: NATransformer
    trained: nn.Module  # nnet itself, or nnet wrapped for DDP
    optimizer: torch.optim.Optimizer
    precision: MixedPrecision
    scaler: torch.amp.GradScaler | None
    step: int


@dataclass(frozen=True)
class _Run:
    cfg: TrainConfig
    tokens: TokenDataset
    out: Path
    target: int
    progress: bool
    callback: ProgressCallback | None
    ema_path: Path | None

    @property
    def ckpt_root(self) -> Path:
        return self.out / "ckpts"

    def train(self, process: Process, *, resume: bool) -> Path:
        self._check_data_fits(process)
        checkpoint = self._checkpoint_to_resume(resume)
        if process.rank == 0:
            self.ckpt_root.mkdir(parents=True, exist_ok=True)
            write_atomically(yaml.safe_dump(self.cfg.to_dict(), sort_keys=False),
                             self.out / "config.yaml")
        model = self._build_model(process, checkpoint)
        self._update(model, process)
        return self._write_final_ema(model, process)

    def _check_data_fits(self, process: Process) -> None:
        batch_size = self.cfg.train.batch_size
        if batch_size % process.world_size:
            raise ValueError(
                f"train.batch_size {batch_size} is not divisible by the "
                f"{process.world_size} processes"
            )
        if len(self.tokens) < batch_size:
            raise ValueError(
                f"train.batch_size {batch_size} exceeds the {len(self.tokens)} rows "
                f"of {self.tokens.path}"
            )

    def _checkpoint_to_resume(self, resume: bool) -> Path | None:
        latest = latest_checkpoint(self.ckpt_root)
        if latest is not None and not resume:
            raise ValueError(
                f"{self.out} already holds checkpoints (latest {latest.name}); resume or "
                "pick another output folder"
            )
        return latest

    def _build_model(self, process: Process, checkpoint: Path | None) -> _Model:
        """The model (initialised from the seeded global RNG, then restored if resuming),
        its optimiser, its EMA copy and, with several ranks, its DDP wrapper."""
        dev, seed = process.device, derive_seed(self.cfg.train.seed, "torch", process.rank)
        torch.default_generator.manual_seed(seed)  # dropout; inside pretrain's fork_rng
        if dev.type == "cuda":
            torch.cuda.manual_seed(seed)
        nnet = NATransformer(**self.cfg.nnet).to(dev)
        optimizer = build_optimizer(nnet, self.cfg.optimizer)
        precision = MixedPrecision.for_device(self.cfg.train, dev)
        scaler = precision.scaler()
        step = 0
        if checkpoint is not None:
            step = restore_training(checkpoint, nnet=nnet, optimizer=optimizer, scaler=scaler,
                                    optimizer_config=self.cfg.optimizer, device=dev)
        nnet_ema = copy.deepcopy(nnet).eval().requires_grad_(False)
        trained: nn.Module = nnet
        if process.world_size > 1:
            steps = all_gather(process, step)
            if len(set(steps)) > 1:
                raise ValueError(f"the ranks found checkpoints at different steps {steps} "
                                 f"under {self.ckpt_root}; it must be on a filesystem all "
                                 "nodes share")
            trained = DistributedDataParallel(
                nnet, device_ids=[dev.index] if dev.type == "cuda" else None
            )
            ema_update(nnet_ema, nnet, 0.0)  # DDP has broadcast rank 0's weights
        if checkpoint is not None:
            restore_ema_and_rng(checkpoint, nnet_ema=nnet_ema, process=process)
            if process.rank == 0:
                logger.info("resumed from %s at step %d", checkpoint, step)
                if step > self.target:
                    logger.warning("the checkpoint is past the last step %d; nothing to train",
                                   self.target)
        return _Model(nnet, nnet_ema, trained, optimizer, precision, scaler, step)

    def _update(self, model: _Model, process: Process) -> None:
        """Updates model.step+1 .. target, each followed by its report and checkpoint."""
        tc, dev = self.cfg.train, process.device
        loader = step_batch_loader(self.tokens, tc, process, start=model.step, stop=self.target)
        generator = torch.Generator(device=dev)
        window, window_n, lr = torch.zeros((), device=dev), 0, 0.0
        model.nnet.train()
        bar = tqdm(total=self.target, initial=model.step, desc="pretrain", unit="step",
                   disable=not self.progress or process.rank != 0, dynamic_ncols=True)
        with bar:
            for codes, labels in loader:
                self._check_batch(codes, labels)
                model.step += 1
                generator.manual_seed(derive_seed(tc.seed, "step", process.rank, model.step))
                lr = warmup_lr(model.step, base_lr=self.cfg.optimizer.lr,
                               warmup_steps=self.cfg.lr_scheduler.warmup_steps)
                loss = self._step(model, codes.to(dev, non_blocking=True),
                                  labels.to(dev, non_blocking=True), generator, lr)
                window += loss
                window_n += 1
                bar.update(1)
                last = model.step == self.target
                if model.step % tc.log_interval == 0 or last:
                    mean = self._report(model, process, window, window_n, lr, bar)
                    window.zero_()
                    window_n = 0
                    if self.callback is not None:
                        self.callback(TrainProgress(model.step, mean, lr, process.rank,
                                                    process.world_size, model.nnet,
                                                    model.nnet_ema))
                if model.step % tc.save_interval == 0 or last:
                    save_checkpoint(self.ckpt_root, model.step, process, nnet=model.nnet,
                                    nnet_ema=model.nnet_ema, optimizer=model.optimizer,
                                    scaler=model.scaler)

    def _step(self, model: _Model, codes: Tensor, labels: Tensor, generator: torch.Generator,
              lr: float) -> Tensor:
        """One update on this rank's share of the batch; returns the detached loss."""
        cfg = self.cfg
        ids, targets = mask_tokens(codes, mask_id=cfg.nnet["codebook_size"],
                                   beta=cfg.train.mask_beta, generator=generator,
                                   ignore_index=cfg.muse.ignore_ind)
        if cfg.dataset.cfg:
            labels = drop_labels(labels, p=cfg.dataset.p_uncond, null_class=cfg.null_class,
                                 generator=generator)
        set_learning_rate(model.optimizer, lr)
        model.optimizer.zero_grad(set_to_none=True)
        with model.precision.autocast():
            logits = model.trained(ids, labels)
        loss = masked_token_loss(logits, targets, ignore_index=cfg.muse.ignore_ind,
                                 smoothing=cfg.muse.smoothing)
        if model.scaler is not None:
            model.scaler.scale(loss).backward()
            model.scaler.step(model.optimizer)
            model.scaler.update()
        else:
            loss.backward()
            model.optimizer.step()
        ema_update(model.nnet_ema, model.nnet, cfg.train.ema)
        return loss.detach()

    def _report(self, model: _Model, process: Process, window: Tensor, window_n: int,
                lr: float, bar: Any) -> float:
        """The mean loss over the ranks and the updates since the last report; logged."""
        if process.world_size > 1:
            dist.all_reduce(window)
        mean = window.item() / (window_n * process.world_size)
        if process.rank == 0:
            logger.info("step %d/%d loss %.4f lr %.3e", model.step, self.target, mean, lr)
            bar.set_postfix(loss=f"{mean:.4f}", lr=f"{lr:.2e}")
        return mean

    def _check_batch(self, codes: Tensor, labels: Tensor) -> None:
        source = self.tokens.path
        k, c = self.cfg.nnet["codebook_size"], self.cfg.nnet["num_classes"]
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= k):
            raise ValueError(f"{source}: code ids must lie in [0, {k}), found "
                             f"{int(codes.min())}..{int(codes.max())} (nnet.codebook_size {k})")
        if int(labels.min()) < 0 or int(labels.max()) >= c:
            raise ValueError(f"{source}: labels must lie in [0, {c}), found "
                             f"{int(labels.min())}..{int(labels.max())} (nnet.num_classes {c})")

    def _write_final_ema(self, model: _Model, process: Process) -> Path:
        final = self.ema_path or self.out / "nnet_ema.pth"
        if process.rank == 0:
            final.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(model.nnet_ema.state_dict(), final)
            logger.info("step %d: EMA weights written to %s", model.step, final)
        barrier(process)
        return final
