"""Image loading for reference statistics (``fid-stats``) and dataset tokenizing.

Images become float tensors (3, size, size) in [0, 1] after ADM's centre crop (the
preprocessing of the reference's ``dataset.py``). Sample batches stored as ``.npz``
(``arr_0`` of shape (N, H, W, 3), uint8, as guided-diffusion/ADM write them) are streamed
without loading the whole array.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageTensorDataset",
    "center_crop",
    "count_images",
    "iter_image_batches",
    "iter_npz_images",
    "list_class_folders",
    "list_images",
    "list_labeled_images",
    "load_image",
    "npz_image_shape",
    "uint8_to_tensor",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".bmp", ".tif", ".tiff", ".webp")


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _walk_images(root: Path) -> list[Path]:
    # Same order as torchvision's ImageFolder: directories by path, then file names.
    found: list[Path] = []
    for dirpath, _, filenames in sorted(os.walk(root, followlinks=True)):
        found.extend(Path(dirpath) / f for f in sorted(filenames) if _is_image(f))
    return found


def list_images(root: str | Path) -> list[Path]:
    """All images under ``root`` (recursive, sorted)."""
    r = Path(root).expanduser()
    if not r.is_dir():
        raise ValueError(f"image folder not found: {r}")
    images = _walk_images(r)
    if not images:
        raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found under {r}")
    return images


def list_class_folders(root: str | Path) -> list[tuple[Path, int]]:
    """Class sub-folders of ``root`` with their labels: index in name order, as in
    torchvision's ImageFolder."""
    r = Path(root).expanduser()
    if not r.is_dir():
        raise ValueError(f"image folder not found: {r}")
    names = sorted(entry.name for entry in os.scandir(r) if entry.is_dir())
    if not names:
        raise ValueError(f"no class sub-folders found in {r}")
    return [(r / name, index) for index, name in enumerate(names)]


def list_labeled_images(root: str | Path) -> list[tuple[Path, int]]:
    """(image, label) for every image under each class sub-folder, ImageFolder order."""
    samples: list[tuple[Path, int]] = []
    for folder, label in list_class_folders(root):
        images = _walk_images(folder)
        if not images:
            raise ValueError(f"class folder {folder} (label {label}) holds no images")
        samples.extend((path, label) for path in images)
    return samples


def center_crop(image: Image.Image, size: int) -> Image.Image:
    """ADM's centre crop: halve with BOX while the short side is >= 2 * size, resize with
    BICUBIC so the short side is ``size``, then crop the central size x size square."""
    if size <= 0:
        raise ValueError(f"crop size must be positive, got {size}")
    while min(image.size) >= 2 * size:
        width, height = image.size
        image = image.resize((width // 2, height // 2), resample=Image.Resampling.BOX)
    width, height = image.size
    scale = size / min(width, height)
    image = image.resize(
        (round(width * scale), round(height * scale)), resample=Image.Resampling.BICUBIC
    )
    width, height = image.size
    left, top = (width - size) // 2, (height - size) // 2
    return image.crop((left, top, left + size, top + size))


def uint8_to_tensor(array: np.ndarray) -> torch.Tensor:
    """(..., H, W, 3) uint8 -> float32 (..., 3, H, W) in [0, 1]."""
    writable = np.require(array, dtype=np.uint8, requirements=["C", "W"])
    return torch.from_numpy(writable).movedim(-1, -3).float().div_(255.0)


def load_image(path: str | Path, size: int) -> torch.Tensor:
    """An image file as float32 (3, size, size) in [0, 1], RGB, ADM centre-cropped."""
    p = Path(path)
    try:
        with Image.open(p) as img:
            rgb = img.convert("RGB")
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read image {p}: {exc}") from exc
    return uint8_to_tensor(np.asarray(center_crop(rgb, size)))


class ImageTensorDataset(Dataset[torch.Tensor]):
    """Image files as (3, size, size) tensors in [0, 1]; a DataLoader batches them."""

    def __init__(self, paths: Sequence[str | Path], size: int) -> None:
        if size <= 0:
            raise ValueError(f"image size must be positive, got {size}")
        self.paths = [Path(p) for p in paths]
        self.size = size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        return load_image(self.paths[index], self.size)


def _npz_member(zf: zipfile.ZipFile, path: Path) -> str:
    arrays = [n for n in zf.namelist() if n.endswith(".npy")]
    if "arr_0.npy" in arrays:
        return "arr_0.npy"
    if len(arrays) == 1:
        return arrays[0]
    found = [n.removesuffix(".npy") for n in arrays]
    raise ValueError(f"{path}: expected an array 'arr_0' or a single array, found {found}")


def _image_array_shape(
    shape: tuple[int, ...], dtype: np.dtype, path: Path
) -> tuple[int, int, int, int]:
    """``shape`` as (N, H, W, 3), if it is one of uint8 images."""
    if len(shape) != 4 or shape[3] != 3 or dtype != np.uint8:
        raise ValueError(
            f"{path}: expected images of shape (N, H, W, 3) uint8, got {shape} {dtype}"
        )
    n, height, width, channels = shape
    return n, height, width, channels


def npz_image_shape(path: str | Path) -> tuple[int, int, int, int]:
    """Shape (N, H, W, 3) of the image array in an ``.npz``, read from its header."""
    with _npz_images(Path(path)) as (shape, _, _):
        return shape


@contextmanager
def _npz_images(
    path: Path,
) -> Iterator[tuple[tuple[int, int, int, int], IO[bytes] | None, np.ndarray | None]]:
    """(shape, stream positioned at the pixel data, None) for a C-order ``.npy`` member with
    a version 1/2 header; otherwise (shape, None, the whole array)."""
    if not path.is_file():
        raise ValueError(f"image .npz not found: {path}")
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{path}: not an .npz file ({exc})") from exc
    with zf:
        name = _npz_member(zf, path)
        with zf.open(name) as fh:
            version = np.lib.format.read_magic(fh)
            if version in ((1, 0), (2, 0)):
                read_header = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                header_shape, fortran, dtype = read_header(fh)
                shape = _image_array_shape(header_shape, dtype, path)
                if not fortran:
                    yield shape, fh, None
                    return
    with np.load(path, allow_pickle=False) as data:
        array = data[name.removesuffix(".npy")]
    yield _image_array_shape(array.shape, array.dtype, path), None, array


def iter_npz_images(
    path: str | Path, *, batch_size: int, size: int | None = None
) -> Iterator[torch.Tensor]:
    """Batches (B, 3, H, W) in [0, 1] from an ``.npz`` of uint8 images, read incrementally.
    With ``size`` given, images of another resolution are ADM centre-cropped to it."""
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    p = Path(path)
    with _npz_images(p) as (shape, stream, array):
        n, h, w, c = shape
        row_bytes = h * w * c
        for start in range(0, n, batch_size):
            count = min(batch_size, n - start)
            if array is not None:
                chunk = array[start : start + count]
            else:
                assert stream is not None
                data = stream.read(count * row_bytes)
                if len(data) != count * row_bytes:
                    raise ValueError(f"{p}: image array is truncated at image {start}")
                chunk = np.frombuffer(data, dtype=np.uint8).reshape(count, h, w, c)
            if size is not None and (h, w) != (size, size):
                chunk = np.stack(
                    [np.asarray(center_crop(Image.fromarray(im), size)) for im in chunk]
                )
            yield uint8_to_tensor(chunk)


def count_images(source: str | Path) -> int:
    """Number of images in a folder or an ``.npz``."""
    p = Path(source).expanduser()
    if p.suffix.lower() == ".npz":
        return npz_image_shape(p)[0]
    return len(list_images(p))


def iter_image_batches(
    source: str | Path, *, batch_size: int, size: int | None = None, num_workers: int = 0
) -> Iterator[torch.Tensor]:
    """Batches (B, 3, size, size) in [0, 1] from an image folder (``size`` required) or an
    ``.npz`` of images (``size`` optional)."""
    p = Path(source).expanduser()
    if p.suffix.lower() == ".npz":
        yield from iter_npz_images(p, batch_size=batch_size, size=size)
        return
    if size is None:
        raise ValueError(f"an image size is needed to load the image folder {p}")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    loader = DataLoader(
        ImageTensorDataset(list_images(p), size),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
    )
    yield from loader
