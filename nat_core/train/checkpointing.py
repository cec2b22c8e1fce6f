"""Training checkpoints in the reference's layout, written atomically and read back to resume.

``{out_dir}/ckpts/{step}.ckpt/`` holds ``step.pth``, ``nnet.pth``, ``nnet_ema.pth`` (plain
state dicts, reference key names) and ``optimizer.pth``, plus our ``rng.pth`` (every rank's
dropout RNG state) and, with fp16, ``scaler.pth``. A folder is complete once renamed from its
temporary name, so the latest complete one is always safe to resume from.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from nat_core.model import NATransformer, load_nat_checkpoint
from nat_core.train.config import OptimizerSection
from nat_core.train.distributed import Process, all_gather, barrier
from nat_core.train.optimization import keep_configured_hyperparameters

__all__ = [
    "CKPT_FILES",
    "latest_checkpoint",
    "restore_ema_and_rng",
    "restore_training",
    "save_checkpoint",
    "write_atomically",
]

logger = logging.getLogger(__name__)

CKPT_FILES = ("step.pth", "nnet.pth", "nnet_ema.pth", "optimizer.pth")


def latest_checkpoint(ckpt_root: str | Path) -> Path | None:
    """The complete ``{step}.ckpt`` folder with the highest step, if any."""
    root = Path(ckpt_root)
    if not root.is_dir():
        return None
    found: list[tuple[int, Path]] = []
    for entry in root.iterdir():
        stem = entry.name.removesuffix(".ckpt")
        if (
            entry.name.endswith(".ckpt")
            and stem.isdigit()
            and entry.is_dir()
            and all((entry / f).is_file() for f in CKPT_FILES)
        ):
            found.append((int(stem), entry))
    return max(found)[1] if found else None


def write_atomically(obj: str | dict[str, Any], path: Path) -> None:
    """Text, or a state dict saved with torch, at ``path`` by way of a temporary file."""
    tmp = path.with_name(f".{path.name}.tmp")
    if isinstance(obj, str):
        tmp.write_text(obj)
    else:
        torch.save(obj, tmp)
    tmp.replace(path)


def _write_folder(root: Path, step: int, files: dict[str, Any]) -> Path:
    final, tmp = root / f"{step}.ckpt", root / f".{step}.ckpt.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, obj in files.items():
        torch.save(obj, tmp / name)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return final


def _rng_state(device: torch.device) -> Tensor:
    return torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state()


def _set_rng_state(state: Tensor, device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.set_rng_state(state, device)
    else:
        torch.set_rng_state(state)


def save_checkpoint(
    root: Path,
    step: int,
    process: Process,
    *,
    nnet: nn.Module,
    nnet_ema: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
) -> None:
    """Collective: every rank gives its RNG state, rank 0 writes the folder."""
    states = all_gather(process, _rng_state(process.device).cpu())
    if process.rank == 0:
        files: dict[str, Any] = {
            "step.pth": step,
            "nnet.pth": nnet.state_dict(),
            "nnet_ema.pth": nnet_ema.state_dict(),
            "optimizer.pth": optimizer.state_dict(),
            "rng.pth": {
                "world_size": process.world_size,
                "device": process.device.type,
                "states": states,
            },
        }
        if scaler is not None:
            files["scaler.pth"] = scaler.state_dict()
        logger.info("saved %s", _write_folder(root, step, files))
    barrier(process)


def restore_training(
    checkpoint: Path,
    *,
    nnet: NATransformer,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    optimizer_config: OptimizerSection,
    device: torch.device,
) -> int:
    """Weights, optimiser state (hyper-parameters from the config) and scaler; the step."""
    load_nat_checkpoint(nnet, checkpoint / "nnet.pth")
    optimizer.load_state_dict(
        torch.load(checkpoint / "optimizer.pth", map_location=device, weights_only=True)
    )
    keep_configured_hyperparameters(optimizer, optimizer_config)
    if scaler is not None and (checkpoint / "scaler.pth").is_file():
        scaler.load_state_dict(torch.load(checkpoint / "scaler.pth", weights_only=True))
    return int(torch.load(checkpoint / "step.pth", weights_only=True))


def restore_ema_and_rng(checkpoint: Path, *, nnet_ema: NATransformer, process: Process) -> None:
    """The EMA weights, and this rank's dropout RNG state when the run has the same shape."""
    load_nat_checkpoint(nnet_ema, checkpoint / "nnet_ema.pth")
    rng_file = checkpoint / "rng.pth"
    saved = torch.load(rng_file, weights_only=True) if rng_file.is_file() else None
    same_shape = saved is not None and (saved["world_size"], saved["device"]) == (
        process.world_size,
        process.device.type,
    )
    if saved is not None and same_shape:
        _set_rng_state(saved["states"][process.rank], process.device)
    elif process.rank == 0:
        logger.warning(
            "%s: no RNG state for %d %s processes; dropout draws differ from an "
            "uninterrupted run",
            checkpoint,
            process.world_size,
            process.device.type,
        )
