"""Token datasets in the reference's layout, and tokenizing labelled images into them.

A token dataset is one ``.npy`` array of shape (N, 1 + L), integers: per row the class
label, then the L code ids of one image (the layout of the reference's
``extract_imagenet_feature.py``, which ``dataset.py`` reads back). We write int64.

Training images are tokenized together with their horizontal mirror images (the
reference does so for ImageNet; pass ``flip=False`` for data where mirroring changes the
meaning, such as digits). Row order: image i gives row 2i and its mirror image row
2i + 1, whatever the batch size.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

__all__ = [
    "TRAIN_FILE",
    "Encoder",
    "TokenDataset",
    "resolve_token_path",
    "tokenize_image_folder",
    "tokenize_images",
    "write_token_dataset",
]

Encoder = Callable[[Tensor], Tensor]
TRAIN_FILE = "train.npy"


def resolve_token_path(path: str | Path) -> Path:
    """The ``.npy`` file itself, or ``train.npy`` in a folder (the reference's layout)."""
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / TRAIN_FILE
    if not p.is_file():
        raise ValueError(f"token dataset not found: {p}")
    return p


def _open_tokens(path: Path) -> np.ndarray:
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read token dataset {path}: {exc}") from exc
    if array.ndim != 2 or array.shape[1] < 2 or array.shape[0] < 1:
        raise ValueError(
            f"token dataset {path}: expected an array (N, 1 + L) with N >= 1 and L >= 1, "
            f"got shape {array.shape}"
        )
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"token dataset {path}: expected integers (int64), got {array.dtype}")
    return array


class TokenDataset(Dataset[tuple[Tensor, int]]):
    """A memory-mapped token dataset; item i is (codes LongTensor (L,), label).

    Picklable without its data (DataLoader workers re-open the file), and ``batch`` reads
    many rows at once for training.
    """

    def __init__(self, path: str | Path, *, seq_len: int | None = None) -> None:
        self.path = resolve_token_path(path)
        self._rows: np.ndarray | None = _open_tokens(self.path)
        self.num_rows, width = self._rows.shape
        self.seq_len = width - 1
        if seq_len is not None and seq_len != self.seq_len:
            raise ValueError(
                f"token dataset {self.path}: rows hold {self.seq_len} codes, the model "
                f"expects {seq_len}"
            )

    @property
    def rows(self) -> np.ndarray:
        if self._rows is None:
            self._rows = _open_tokens(self.path)
        return self._rows

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_rows": None}

    def __len__(self) -> int:
        return self.num_rows

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        if not -self.num_rows <= index < self.num_rows:
            raise IndexError(f"index {index} out of range for {self.num_rows} rows")
        row = np.asarray(self.rows[index], dtype=np.int64)
        return torch.from_numpy(row[1:].copy()), int(row[0])

    def batch(self, indices: Sequence[int] | np.ndarray | Tensor) -> tuple[Tensor, Tensor]:
        """Rows at ``indices`` as (codes (B, L), labels (B,)), both int64."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.ndim != 1:
            raise ValueError(f"expected a 1-d list of indices, got shape {idx.shape}")
        # Reading in file order is kinder to the page cache; the result keeps idx's order.
        order = np.argsort(idx, kind="stable")
        block = np.empty((len(idx), self.seq_len + 1), dtype=np.int64)
        block[order] = self.rows[idx[order]]
        data = torch.from_numpy(block)
        return data[:, 1:], data[:, 0]

    def value_ranges(self, chunk_rows: int = 65536) -> tuple[int, int, int, int]:
        """(min label, max label, min code, max code), read in chunks."""
        lo_label, hi_label = np.iinfo(np.int64).max, np.iinfo(np.int64).min
        lo_code, hi_code = lo_label, hi_label
        for start in range(0, self.num_rows, chunk_rows):
            chunk = np.asarray(self.rows[start : start + chunk_rows])
            lo_label, hi_label = min(lo_label, chunk[:, 0].min()), max(hi_label, chunk[:, 0].max())
            codes = chunk[:, 1:]
            lo_code, hi_code = min(lo_code, codes.min()), max(hi_code, codes.max())
        return int(lo_label), int(hi_label), int(lo_code), int(hi_code)


def _check_image(image: Tensor, index: int) -> None:
    if not isinstance(image, Tensor) or image.dim() != 3 or image.shape[0] != 3:
        shape = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
        raise ValueError(f"image {index}: expected a tensor (3, H, W), got {shape}")
    if not image.is_floating_point():
        raise ValueError(f"image {index}: expected floats in [0, 1], got {image.dtype}")


def _encode_batch(
    images: list[Tensor], labels: list[int], encode: Encoder, *, flip: bool
) -> np.ndarray:
    batch = torch.stack(images)
    if flip:
        batch = torch.cat([batch, batch.flip(-1)])
    with torch.no_grad():
        codes = encode(batch)
    if not isinstance(codes, Tensor) or codes.dim() < 2 or codes.shape[0] != len(batch):
        shape = tuple(codes.shape) if isinstance(codes, Tensor) else type(codes).__name__
        raise ValueError(f"encoder returned {shape} for a batch of {len(batch)} images")
    if codes.is_floating_point() or codes.is_complex():
        raise ValueError(f"encoder returned {codes.dtype}; expected integer code ids")
    codes = codes.reshape(len(batch), -1).to("cpu", torch.int64)
    if flip:
        # (2B, L) as [originals, mirrors] -> image i at row 2i, its mirror at row 2i + 1.
        codes = codes.view(2, len(images), -1).transpose(0, 1).reshape(len(batch), -1)
    label_col = torch.tensor(labels, dtype=torch.int64)
    if flip:
        label_col = label_col.repeat_interleave(2)
    return torch.cat([label_col[:, None], codes], dim=1).numpy()


def tokenize_images(
    samples: Iterable[tuple[Tensor, int]],
    encode: Encoder,
    *,
    batch_size: int = 64,
    flip: bool = True,
    progress: bool = False,
    total: int | None = None,
) -> np.ndarray:
    """Encode (image (3, H, W) in [0, 1], label) pairs into token rows (N', 1 + h*w) int64.

    ``encode`` maps a float batch (B, 3, H, W) to code ids (B, h, w) (or (B, h*w)); it is
    called on up to ``2 * batch_size`` images when ``flip``. With ``flip``, N' = 2N and
    row 2i + 1 holds the horizontally mirrored image i; otherwise N' = N in input order.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if total is None and hasattr(samples, "__len__"):
        total = len(samples)  # type: ignore[arg-type]
    parts: list[np.ndarray] = []
    images: list[Tensor] = []
    labels: list[int] = []
    seen = 0
    width: int | None = None
    with tqdm(total=total, disable=not progress, desc="tokenize", unit="img") as bar:

        def flush() -> None:
            nonlocal width
            rows = _encode_batch(images, labels, encode, flip=flip)
            if width is not None and rows.shape[1] != width:
                raise ValueError(
                    f"encoder returned {rows.shape[1] - 1} codes per image for the images "
                    f"from {seen - len(images)} on, {width - 1} before"
                )
            width = rows.shape[1]
            parts.append(rows)
            bar.update(len(images))
            images.clear()
            labels.clear()

        for image, label in samples:
            _check_image(image, seen)
            if images and image.shape != images[0].shape:
                raise ValueError(
                    f"image {seen}: shape {tuple(image.shape)} differs from "
                    f"{tuple(images[0].shape)} earlier in its batch"
                )
            if int(label) < 0:
                raise ValueError(f"image {seen}: labels must be >= 0, got {int(label)}")
            images.append(image)
            labels.append(int(label))
            seen += 1
            if len(images) == batch_size:
                flush()
        if images:
            flush()
    if not parts:
        raise ValueError("no images to tokenize")
    return np.concatenate(parts)


def write_token_dataset(path: str | Path, rows: np.ndarray) -> Path:
    """Save rows (N, 1 + L) as an int64 ``.npy`` (atomically: a temporary file, renamed)."""
    array = np.asarray(rows)
    if array.ndim != 2 or array.shape[1] < 2 or array.shape[0] < 1:
        raise ValueError(f"token rows must have shape (N, 1 + L), got {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"token rows must be integers, got {array.dtype}")
    p = Path(path).expanduser()
    if p.suffix != ".npy":
        raise ValueError(f"token dataset path must end in .npy, got {p}")
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, array.astype(np.int64, copy=False), allow_pickle=False)
    tmp.replace(p)
    return p


class _LabeledImages(Dataset[tuple[Tensor, int]]):
    def __init__(self, items: list[tuple[Path, int]], size: int) -> None:
        self.items = items
        self.size = size

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        from nat_core.image_folder import load_image

        path, label = self.items[index]
        return load_image(path, self.size), label


def tokenize_image_folder(
    root: str | Path,
    encode: Encoder,
    *,
    size: int,
    batch_size: int = 64,
    flip: bool = True,
    progress: bool = False,
    num_workers: int = 0,
) -> np.ndarray:
    """``tokenize_images`` over the class folders of ``root`` (labels by folder name order,
    as torchvision's ImageFolder; images ADM centre-cropped to ``size``), in file order."""
    from nat_core.image_folder import list_labeled_images

    items = list_labeled_images(root)
    loader = DataLoader(
        _LabeledImages(items, size), batch_size=None, shuffle=False, num_workers=num_workers
    )
    return tokenize_images(
        loader, encode, batch_size=batch_size, flip=flip, progress=progress, total=len(items)
    )
