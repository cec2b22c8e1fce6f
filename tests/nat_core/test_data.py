import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from nat_core.data import (
    TokenDataset,
    tokenize_image_folder,
    tokenize_images,
    write_token_dataset,
)
from nat_core.image_folder import load_image


def _rows(n: int = 10, length: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate(
        [rng.integers(0, 5, (n, 1)), rng.integers(0, 1024, (n, length))], axis=1
    ).astype(np.int64)


def test_token_dataset_round_trip(tmp_path):
    rows = _rows()
    path = write_token_dataset(tmp_path / "sub" / "train.npy", rows)
    ds = TokenDataset(path)
    assert (len(ds), ds.seq_len) == (10, 6)
    codes, label = ds[3]
    assert codes.dtype == torch.int64 and codes.shape == (6,)
    assert label == rows[3, 0] and isinstance(label, int)
    assert codes.tolist() == rows[3, 1:].tolist()
    # Batches keep the order asked for, however the rows are read.
    batch_codes, batch_labels = ds.batch([7, 1, 7, 4])
    assert batch_codes.tolist() == rows[[7, 1, 7, 4], 1:].tolist()
    assert batch_labels.tolist() == rows[[7, 1, 7, 4], 0].tolist()
    # The reference's layout: a folder holding train.npy.
    assert TokenDataset(tmp_path / "sub")[0][1] == rows[0, 0]
    assert ds.value_ranges(chunk_rows=3) == (
        rows[:, 0].min(),
        rows[:, 0].max(),
        rows[:, 1:].min(),
        rows[:, 1:].max(),
    )


def test_token_dataset_pickles_without_its_data(tmp_path):
    rows = _rows(n=2000, length=64)
    ds = TokenDataset(write_token_dataset(tmp_path / "t.npy", rows))
    blob = pickle.dumps(ds)
    assert len(blob) < 2000  # the 1 MB of rows stay in the file
    copy = pickle.loads(blob)
    assert copy[1999][0].tolist() == rows[1999, 1:].tolist()
    loader = torch.utils.data.DataLoader(ds, batch_size=500, num_workers=1)
    codes, labels = next(iter(loader))
    assert codes.tolist() == rows[:500, 1:].tolist() and labels.tolist() == rows[:500, 0].tolist()


def test_token_dataset_errors_name_the_file(tmp_path):
    with pytest.raises(ValueError, match="missing.npy"):
        TokenDataset(tmp_path / "missing.npy")
    np.save(tmp_path / "floats.npy", np.zeros((3, 5), dtype=np.float32))
    with pytest.raises(ValueError, match=r"floats\.npy.*float32"):
        TokenDataset(tmp_path / "floats.npy")
    np.save(tmp_path / "flat.npy", np.zeros(5, dtype=np.int64))
    with pytest.raises(ValueError, match=r"flat\.npy.*\(5,\)"):
        TokenDataset(tmp_path / "flat.npy")
    path = write_token_dataset(tmp_path / "ok.npy", _rows(length=6))
    with pytest.raises(ValueError, match=r"ok\.npy.*6 codes.*16"):
        TokenDataset(path, seq_len=16)
    with pytest.raises(ValueError, match=r"\(4,\)"):
        write_token_dataset(tmp_path / "x.npy", np.zeros(4, dtype=np.int64))
    with pytest.raises(ValueError, match="float64"):
        write_token_dataset(tmp_path / "x.npy", np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"\.npy"):
        write_token_dataset(tmp_path / "x.bin", _rows())


def fake_encode(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B, H/2, W/2): 2x2 means of the red channel in 8 levels; pooling
    commutes with mirroring, so a mirrored image gives mirrored codes."""
    return (F.avg_pool2d(images[:, :1], 2)[:, 0] * 7).round().long()


def _images(n: int, size: int = 4, seed: int = 0) -> list[tuple[torch.Tensor, int]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(3, size, size, generator=g), i % 3) for i in range(n)]


def test_tokenize_images_rows_are_label_then_codes():
    samples = _images(5)
    rows = tokenize_images(samples, fake_encode, batch_size=2, flip=False)
    assert rows.dtype == np.int64 and rows.shape == (5, 1 + 4)
    for row, (image, label) in zip(rows, samples, strict=True):
        assert row[0] == label
        assert row[1:].tolist() == fake_encode(image[None]).flatten().tolist()


def test_tokenize_images_adds_mirrored_images_in_a_fixed_order():
    samples = _images(5)
    plain = tokenize_images(samples, fake_encode, batch_size=2, flip=False)
    rows = tokenize_images(samples, fake_encode, batch_size=2, flip=True)
    assert rows.shape == (10, 5)
    assert (rows[0::2] == plain).all()
    for i, (image, label) in enumerate(samples):
        assert rows[2 * i + 1, 0] == label
        mirrored = fake_encode(image.flip(-1)[None])[0]
        assert rows[2 * i + 1, 1:].tolist() == mirrored.flatten().tolist()
        assert mirrored.tolist() == fake_encode(image[None])[0].flip(-1).tolist()
    assert (rows[1::2, 1:] != plain[:, 1:]).any()  # the mirror images are not the originals
    for batch_size in (1, 3, 64):
        assert (
            tokenize_images(samples, fake_encode, batch_size=batch_size, flip=True) == rows
        ).all()


def test_tokenize_images_errors():
    with pytest.raises(ValueError, match="batch_size"):
        tokenize_images(_images(2), fake_encode, batch_size=0, flip=False)
    with pytest.raises(ValueError, match="float32"):
        tokenize_images(_images(2), lambda x: x[:, 0], batch_size=2, flip=False)
    with pytest.raises(ValueError, match=r"image 1.*\(3, 4\)"):
        tokenize_images(
            [_images(1)[0], (torch.zeros(3, 4), 0)], fake_encode, batch_size=2, flip=False
        )
    with pytest.raises(ValueError, match="-1"):
        tokenize_images([(torch.zeros(3, 4, 4), -1)], fake_encode, batch_size=2, flip=False)
    with pytest.raises(ValueError, match="no images"):
        tokenize_images([], fake_encode, batch_size=2, flip=False)


def test_tokenize_image_folder(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("zebra", "ant"):  # labels follow name order: ant 0, zebra 1
        (tmp_path / name).mkdir()
        for k in range(2):
            pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / name / f"{k}.png")
    rows = tokenize_image_folder(
        tmp_path, fake_encode, size=8, batch_size=3, flip=True, progress=True
    )
    assert rows.shape == (8, 1 + 16)
    assert rows[:, 0].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    files = [
        tmp_path / "ant/0.png",
        tmp_path / "ant/1.png",
        tmp_path / "zebra/0.png",
        tmp_path / "zebra/1.png",
    ]
    for i, path in enumerate(files):
        image = load_image(path, 8)
        assert rows[2 * i, 1:].tolist() == fake_encode(image[None]).flatten().tolist()
        assert rows[2 * i + 1, 1:].tolist() == fake_encode(image.flip(-1)[None]).flatten().tolist()
