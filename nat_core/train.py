"""Pretraining a NAT on a token dataset with the reference's training strategy (SPEC 4).

    autonat-search pretrain CONFIG.yaml                                   # CPU or one GPU
    torchrun --nproc_per_node=8 -m autonat_search.cli pretrain CONFIG.yaml
    torchrun --nnodes=2 --nproc_per_node=8 --rdzv-backend=c10d \\
        --rdzv-endpoint=HOST:29500 -m autonat_search.cli pretrain CONFIG.yaml

Per sample: a mask ratio r ~ Beta(12, 3), ``max(1, round(L * r))`` tokens replaced by
the mask id at random positions, cross-entropy with label smoothing 0.1 on those positions
only, and the label replaced by the null class with probability ``p_uncond``. AdamW with
a linear warm-up, then a constant learning rate; an EMA copy of the weights.

The config is the reference's (``configs/AutoNAT_L.yaml``) plus optional keys; its keys,
defaults and checks are in ``nat_core.train_config``.

Output, as the reference lays it out: ``{out_dir}/ckpts/{step}.ckpt/`` with ``step.pth``,
``nnet.pth``, ``nnet_ema.pth`` (plain state dicts, reference key names) and
``optimizer.pth``, plus our ``rng.pth`` (every rank's dropout RNG state); the final EMA
weights go to ``{out_dir}/nnet_ema.pth``. A run resumes from the latest complete
checkpoint and then matches an uninterrupted run: the data order and the masking draws
are functions of (seed, step, rank).

Learning rate: the reference steps its LambdaLR ``min(step / warmup, 1)`` with the step
count from before each update, so its first two updates run at lr 0; here update s
(1-based) runs at ``lr * min(s / warmup_steps, 1)``, and the rates agree after warm-up.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
import yaml
from scipy.special import betaincinv
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

from nat_core.data import TokenDataset
from nat_core.model import NATransformer, load_nat_checkpoint
from nat_core.train_config import TrainConfig, load_train_config

logger = logging.getLogger(__name__)

CKPT_FILES = ("step.pth", "nnet.pth", "nnet_ema.pth", "optimizer.pth")

# --------------------------------------------------------------------------- training pieces


def derive_seed(*parts: int | str) -> int:
    """A well-mixed 63-bit seed from a tuple of ints and strings (stable across runs)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def sample_mask_ratios(
    n: int, *, beta: tuple[float, float], generator: torch.Generator
) -> Tensor:
    """n draws of Beta(a, b) (float64, on the generator's device), by the inverse CDF of
    uniforms from ``generator``."""
    a, b = beta
    if not (a > 0 and b > 0):
        raise ValueError(f"Beta parameters must be positive, got {beta}")
    u = torch.rand(n, generator=generator, device=generator.device, dtype=torch.float64)
    ratios = betaincinv(a, b, u.cpu().numpy())
    return torch.from_numpy(np.asarray(ratios, dtype=np.float64)).to(generator.device)


def mask_tokens(
    codes: Tensor, *, mask_id: int, beta: tuple[float, float] = (12.0, 3.0),
    generator: torch.Generator, ignore_index: int = -1,
) -> tuple[Tensor, Tensor]:
    """Mask ``max(1, round(L * r))`` random positions per row, r ~ Beta(a, b).

    Returns (ids with the mask id at masked positions, targets holding the code at masked
    positions and ``ignore_index`` elsewhere). Draws: B uniforms for the ratios, then B x L
    uniforms whose argsort gives each row a random permutation.
    """
    if codes.dim() != 2:
        raise ValueError(f"expected codes (B, L), got shape {tuple(codes.shape)}")
    if generator.device != codes.device:
        raise ValueError(f"generator on {generator.device}, codes on {codes.device}")
    n, length = codes.shape
    ratios = sample_mask_ratios(n, beta=beta, generator=generator)
    counts = torch.round(length * ratios).clamp(1, length).long()
    perm = torch.rand(n, length, generator=generator, device=codes.device).argsort(dim=1)
    masked = perm < counts[:, None]
    ids = torch.where(masked, torch.full_like(codes, mask_id), codes)
    targets = torch.where(masked, codes, torch.full_like(codes, ignore_index))
    return ids, targets


def drop_labels(
    labels: Tensor, *, p: float, null_class: int, generator: torch.Generator
) -> Tensor:
    """Each label replaced by ``null_class`` with probability p (classifier-free guidance)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p_uncond must lie in [0, 1], got {p}")
    drop = torch.rand(labels.shape, generator=generator, device=labels.device) < p
    return torch.where(drop, torch.full_like(labels, null_class), labels)


def masked_token_loss(
    logits: Tensor, targets: Tensor, *, ignore_index: int = -1, smoothing: float = 0.1
) -> Tensor:
    """Mean label-smoothed cross-entropy over positions whose target is not ignored."""
    return F.cross_entropy(logits.float().transpose(1, 2), targets, ignore_index=ignore_index,
                           label_smoothing=smoothing)


def warmup_lr(step: int, *, base_lr: float, warmup_steps: int) -> float:
    """Learning rate of update ``step`` (1-based): linear warm-up, then constant."""
    if warmup_steps <= 0:
        return base_lr
    return base_lr * min(step / warmup_steps, 1.0)


@torch.no_grad()
def ema_update(ema_model: nn.Module, model: nn.Module, rate: float) -> None:
    """ema <- rate * ema + (1 - rate) * model, over parameters (as the reference)."""
    ema_params = [p for _, p in sorted(ema_model.named_parameters())]
    params = [p.detach() for _, p in sorted(model.named_parameters())]
    torch._foreach_mul_(ema_params, rate)
    torch._foreach_add_(ema_params, params, alpha=1.0 - rate)


def latest_checkpoint(ckpt_root: str | Path) -> Path | None:
    """The complete ``{step}.ckpt`` folder with the highest step, if any."""
    root = Path(ckpt_root)
    if not root.is_dir():
        return None
    found: list[tuple[int, Path]] = []
    for entry in root.iterdir():
        stem = entry.name.removesuffix(".ckpt")
        if entry.name.endswith(".ckpt") and stem.isdigit() and entry.is_dir() and all(
            (entry / f).is_file() for f in CKPT_FILES
        ):
            found.append((int(stem), entry))
    return max(found)[1] if found else None


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


# --------------------------------------------------------------------------- data order


class _StepBatches(Sampler[np.ndarray]):
    """Row indices for updates start..stop-1 on one rank. Epoch e is a permutation seeded by
    (seed, e) with the tail that fills no global batch dropped; a global batch is split
    into equal consecutive shares, one per rank."""

    def __init__(self, num_rows: int, global_batch: int, *, rank: int, world_size: int,
                 seed: int, start: int, stop: int) -> None:
        self.num_rows, self.global_batch = num_rows, global_batch
        self.share = global_batch // world_size
        self.rank, self.seed, self.start, self.stop = rank, seed, start, stop
        self.per_epoch = num_rows // global_batch

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self) -> Iterator[np.ndarray]:
        epoch, perm = -1, np.empty(0, dtype=np.int64)
        for update in range(self.start, self.stop):
            e, j = divmod(update, self.per_epoch)
            if e != epoch:
                g = torch.Generator().manual_seed(derive_seed(self.seed, "epoch", e))
                epoch, perm = e, torch.randperm(self.num_rows, generator=g).numpy()
            first = j * self.global_batch + self.rank * self.share
            yield perm[first : first + self.share]


class _Batches(Dataset[tuple[Tensor, Tensor]]):
    def __init__(self, tokens: TokenDataset) -> None:
        self.tokens = tokens

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, indices: np.ndarray) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        return self.tokens.batch(indices)


# --------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class _Dist:
    rank: int = 0
    world_size: int = 1
    owns_group: bool = False


def _setup(device: str | None) -> tuple[_Dist, torch.device]:
    if dist.is_available() and dist.is_initialized():
        info = _Dist(dist.get_rank(), dist.get_world_size())
    elif int(os.environ.get("WORLD_SIZE", "1")) > 1:
        info = _Dist(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), owns_group=True)
    else:
        info = _Dist()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        if dev.index is None:
            dev = torch.device("cuda", local_rank if info.world_size > 1 else 0)
        torch.cuda.set_device(dev)
    if info.owns_group:
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return info, dev


def _rng_state(dev: torch.device) -> Tensor:
    return torch.cuda.get_rng_state(dev) if dev.type == "cuda" else torch.get_rng_state()


def _set_rng_state(state: Tensor, dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.set_rng_state(state, dev)
    else:
        torch.set_rng_state(state)


def _save_file(obj: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    if isinstance(obj, str):
        tmp.write_text(obj)
    else:
        torch.save(obj, tmp)
    tmp.replace(path)


def _save_checkpoint(root: Path, step: int, files: dict[str, Any]) -> Path:
    final, tmp = root / f"{step}.ckpt", root / f".{step}.ckpt.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, obj in files.items():
        torch.save(obj, tmp / name)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return final


def _check_batch(codes: Tensor, labels: Tensor, config: TrainConfig, source: Path) -> None:
    k, c = config.nnet["codebook_size"], config.nnet["num_classes"]
    if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= k):
        raise ValueError(f"{source}: code ids must lie in [0, {k}), found "
                         f"{int(codes.min())}..{int(codes.max())} (nnet.codebook_size {k})")
    if int(labels.min()) < 0 or int(labels.max()) >= c:
        raise ValueError(f"{source}: labels must lie in [0, {c}), found "
                         f"{int(labels.min())}..{int(labels.max())} (nnet.num_classes {c})")


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
    callback: Callable[[TrainProgress], None] | None = None,
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
    info, dev = _setup(device)
    try:
        fork = [dev.index] if dev.type == "cuda" else []
        with torch.random.fork_rng(devices=fork, device_type=dev.type):
            return _run(cfg, tokens, Path(out).expanduser(), info, dev, target=target,
                        resume=resume, progress=progress, callback=callback,
                        ema_path=None if ema_path is None else Path(ema_path).expanduser())
    finally:
        if info.owns_group:
            dist.destroy_process_group()


def _run(cfg: TrainConfig, tokens: TokenDataset, out: Path, info: _Dist, dev: torch.device, *,
         target: int, resume: bool, progress: bool,
         callback: Callable[[TrainProgress], None] | None, ema_path: Path | None) -> Path:
    tc, rank, world = cfg.train, info.rank, info.world_size
    if tc.batch_size % world:
        raise ValueError(f"train.batch_size {tc.batch_size} is not divisible by the "
                         f"{world} processes")
    if len(tokens) < tc.batch_size:
        raise ValueError(f"train.batch_size {tc.batch_size} exceeds the {len(tokens)} rows "
                         f"of {tokens.path}")
    ckpt_root = out / "ckpts"
    latest = latest_checkpoint(ckpt_root)
    if latest is not None and not resume:
        raise ValueError(f"{out} already holds checkpoints (latest {latest.name}); resume or "
                         "pick another output folder")
    if rank == 0:
        ckpt_root.mkdir(parents=True, exist_ok=True)
        _save_file(yaml.safe_dump(cfg.to_dict(), sort_keys=False), out / "config.yaml")

    torch.default_generator.manual_seed(derive_seed(tc.seed, "torch", rank))
    if dev.type == "cuda":
        torch.cuda.manual_seed(derive_seed(tc.seed, "torch", rank))
    nnet = NATransformer(**cfg.nnet).to(dev)
    oc = cfg.optimizer
    opt_class = torch.optim.AdamW if oc.name == "adamw" else torch.optim.Adam
    optimizer = opt_class(nnet.parameters(), lr=oc.lr, betas=oc.betas, eps=oc.eps,
                          weight_decay=oc.weight_decay)
    use_amp = tc.mixed_precision != "no" and dev.type == "cuda"
    if tc.mixed_precision != "no" and not use_amp:
        logger.warning("train.mixed_precision %r needs CUDA; training in float32",
                       tc.mixed_precision)
    amp_dtype = torch.float16 if tc.mixed_precision == "fp16" else torch.bfloat16
    scaler = torch.amp.GradScaler("cuda") if use_amp and amp_dtype == torch.float16 else None
    step = 0
    if latest is not None:
        load_nat_checkpoint(nnet, latest / "nnet.pth")
        optimizer.load_state_dict(
            torch.load(latest / "optimizer.pth", map_location=dev, weights_only=True))
        for group in optimizer.param_groups:  # the config wins over saved hyper-parameters
            group.update(betas=oc.betas, eps=oc.eps, weight_decay=oc.weight_decay)
        step = int(torch.load(latest / "step.pth", weights_only=True))
        if scaler is not None and (latest / "scaler.pth").is_file():
            scaler.load_state_dict(torch.load(latest / "scaler.pth", weights_only=True))
    nnet_ema = copy.deepcopy(nnet).eval().requires_grad_(False)
    model: nn.Module = nnet
    if world > 1:
        seen: list[Any] = [None] * world
        dist.all_gather_object(seen, step)
        if len(set(seen)) > 1:
            raise ValueError(f"the ranks found checkpoints at different steps {seen} under "
                             f"{ckpt_root}; it must be on a filesystem all nodes share")
        model = DistributedDataParallel(nnet, device_ids=[dev.index] if dev.type == "cuda"
                                        else None)
        ema_update(nnet_ema, nnet, 0.0)  # DDP has broadcast rank 0's weights
    if latest is not None:
        load_nat_checkpoint(nnet_ema, latest / "nnet_ema.pth")
        rng_file = latest / "rng.pth"
        saved = torch.load(rng_file, weights_only=True) if rng_file.is_file() else None
        if saved is not None and saved["world_size"] == world and saved["device"] == dev.type:
            _set_rng_state(saved["states"][rank], dev)
        elif rank == 0:
            logger.warning("%s: no RNG state for %d %s processes; dropout draws differ from "
                           "an uninterrupted run", latest, world, dev.type)
        if rank == 0:
            logger.info("resumed from %s at step %d", latest, step)
            if step > target:
                logger.warning("the checkpoint is past the last step %d; nothing to train",
                               target)

    loader = DataLoader(
        _Batches(tokens),
        batch_size=None,
        sampler=_StepBatches(len(tokens), tc.batch_size, rank=rank, world_size=world,
                             seed=tc.seed, start=step, stop=target),
        num_workers=tc.num_workers,
        pin_memory=dev.type == "cuda",
        generator=torch.Generator().manual_seed(derive_seed(tc.seed, "loader", rank)),
    )
    gen = torch.Generator(device=dev)
    window, window_n, lr = torch.zeros((), device=dev), 0, 0.0
    nnet.train()
    bar = tqdm(total=target, initial=step, disable=not progress or rank != 0, desc="pretrain",
               unit="step", dynamic_ncols=True)
    with bar:
        for codes, labels in loader:
            _check_batch(codes, labels, cfg, tokens.path)
            step += 1
            gen.manual_seed(derive_seed(tc.seed, "step", rank, step))
            codes = codes.to(dev, non_blocking=True)
            labels = labels.to(dev, non_blocking=True)
            ids, targets = mask_tokens(codes, mask_id=cfg.nnet["codebook_size"],
                                       beta=tc.mask_beta, generator=gen,
                                       ignore_index=cfg.muse.ignore_ind)
            if cfg.dataset.cfg:
                labels = drop_labels(labels, p=cfg.dataset.p_uncond, null_class=cfg.null_class,
                                     generator=gen)
            lr = warmup_lr(step, base_lr=oc.lr, warmup_steps=cfg.lr_scheduler.warmup_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            optimizer.zero_grad(set_to_none=True)
            amp = torch.autocast("cuda", dtype=amp_dtype) if use_amp else nullcontext()
            with amp:
                logits = model(ids, labels)
            loss = masked_token_loss(logits, targets, ignore_index=cfg.muse.ignore_ind,
                                     smoothing=cfg.muse.smoothing)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            ema_update(nnet_ema, nnet, tc.ema)
            window += loss.detach()
            window_n += 1
            bar.update(1)

            if step % tc.log_interval == 0 or step == target:
                if world > 1:
                    dist.all_reduce(window)
                mean = window.item() / (window_n * world)
                window.zero_()
                window_n = 0
                if rank == 0:
                    logger.info("step %d/%d loss %.4f lr %.3e", step, target, mean, lr)
                    bar.set_postfix(loss=f"{mean:.4f}", lr=f"{lr:.2e}")
                if callback is not None:
                    callback(TrainProgress(step, mean, lr, rank, world, nnet, nnet_ema))
            if step % tc.save_interval == 0 or step == target:
                _checkpoint(ckpt_root, step, info, dev, nnet, nnet_ema, optimizer, scaler)

    final = ema_path or out / "nnet_ema.pth"
    if rank == 0:
        final.parent.mkdir(parents=True, exist_ok=True)
        _save_file(nnet_ema.state_dict(), final)
        logger.info("step %d: EMA weights written to %s", step, final)
    if world > 1:
        dist.barrier()
    return final


def _checkpoint(root: Path, step: int, info: _Dist, dev: torch.device, nnet: nn.Module,
                nnet_ema: nn.Module, optimizer: torch.optim.Optimizer,
                scaler: torch.amp.GradScaler | None) -> None:
    state = _rng_state(dev)
    states: list[Any] = [state]
    if info.world_size > 1:
        states = [None] * info.world_size
        dist.all_gather_object(states, state.cpu())
    if info.rank == 0:
        files: dict[str, Any] = {
            "step.pth": step,
            "nnet.pth": nnet.state_dict(),
            "nnet_ema.pth": nnet_ema.state_dict(),
            "optimizer.pth": optimizer.state_dict(),
            "rng.pth": {"world_size": info.world_size, "device": dev.type, "states": states},
        }
        if scaler is not None:
            files["scaler.pth"] = scaler.state_dict()
        path = _save_checkpoint(root, step, files)
        logger.info("saved %s", path)
    if info.world_size > 1:
        dist.barrier()

