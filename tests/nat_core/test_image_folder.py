from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.datasets import ImageFolder

from nat_core.image_folder import (
    ImageTensorDataset,
    center_crop,
    count_images,
    iter_image_batches,
    iter_npz_images,
    list_class_folders,
    list_images,
    list_labeled_images,
    load_image,
    npz_image_shape,
)


def noise_image(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def save(path: Path, image: Image.Image) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


# --------------------------------------------------------------------------- center crop


@pytest.mark.parametrize(
    ("width", "height", "size"), [(600, 400, 256), (100, 50, 64), (31, 97, 16)]
)
def test_center_crop_output_size(width: int, height: int, size: int) -> None:
    assert center_crop(noise_image(width, height), size).size == (size, size)


def test_center_crop_takes_the_centre_without_resampling_at_scale_one() -> None:
    image = noise_image(300, 100)
    np.testing.assert_array_equal(
        np.asarray(center_crop(image, 100)), np.asarray(image.crop((100, 0, 200, 100)))
    )


def test_center_crop_halves_with_box_then_crops() -> None:
    image = noise_image(400, 800, seed=1)
    halved = image.resize((200, 400), Image.Resampling.BOX).resize((100, 200), Image.Resampling.BOX)
    np.testing.assert_array_equal(
        np.asarray(center_crop(image, 100)), np.asarray(halved.crop((0, 50, 100, 150)))
    )


def test_center_crop_bicubic_resize_of_short_side() -> None:
    image = noise_image(150, 120, seed=2)  # short side 120 < 2 * 80: no halving
    resized = image.resize((100, 80), Image.Resampling.BICUBIC)
    np.testing.assert_array_equal(
        np.asarray(center_crop(image, 80)), np.asarray(resized.crop((10, 0, 90, 80)))
    )


# --------------------------------------------------------------------------- folders


def test_list_images_recursive_sorted_and_filtered(tmp_path: Path) -> None:
    b = save(tmp_path / "b.png", noise_image(8, 8))
    a = save(tmp_path / "a.JPG", noise_image(8, 8))
    nested = save(tmp_path / "sub" / "c.jpeg", noise_image(8, 8))
    (tmp_path / "notes.txt").write_text("not an image")
    assert list_images(tmp_path) == [a, b, nested]


def test_list_images_errors_name_the_folder(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match="empty"):
        list_images(empty)
    with pytest.raises(ValueError, match="missing"):
        list_images(tmp_path / "missing")


def test_class_folders_match_torchvision_image_folder(tmp_path: Path) -> None:
    for cls, count in (("zebra", 2), ("Apple", 1), ("cat", 3)):
        for i in range(count):
            save(tmp_path / cls / f"{i}.png", noise_image(8, 8, seed=i))
    folders = list_class_folders(tmp_path)
    assert folders == [(tmp_path / "Apple", 0), (tmp_path / "cat", 1), (tmp_path / "zebra", 2)]
    reference = ImageFolder(str(tmp_path))
    assert [(str(p), y) for p, y in list_labeled_images(tmp_path)] == reference.samples
    with pytest.raises(ValueError, match="no class sub-folders"):
        list_class_folders(tmp_path / "cat")


def test_load_image_range_channels_and_errors(tmp_path: Path) -> None:
    rgb = save(tmp_path / "rgb.png", Image.new("RGB", (40, 20), (255, 0, 128)))
    grey = save(tmp_path / "grey.png", Image.new("L", (20, 20), 51))
    x = load_image(rgb, 16)
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32
    torch.testing.assert_close(x[:, 8, 8], torch.tensor([1.0, 0.0, 128 / 255]))
    torch.testing.assert_close(load_image(grey, 10), torch.full((3, 10, 10), 0.2))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png"):
        load_image(broken, 8)


def test_folder_batches_through_dataloader(tmp_path: Path) -> None:
    for i in range(5):
        save(tmp_path / f"{i}.png", noise_image(30 + i, 20, seed=i))
    dataset = ImageTensorDataset(list_images(tmp_path), 16)
    assert len(dataset) == 5
    batches = list(iter_image_batches(tmp_path, batch_size=2, size=16))
    assert [b.shape for b in batches] == [(2, 3, 16, 16)] * 2 + [(1, 3, 16, 16)]
    torch.testing.assert_close(batches[1][1], dataset[3])
    assert count_images(tmp_path) == 5
    with pytest.raises(ValueError, match="size"):
        list(iter_image_batches(tmp_path, batch_size=2))


# --------------------------------------------------------------------------- npz


@pytest.mark.parametrize("compressed", [False, True])
def test_npz_iteration_streams_batches(tmp_path: Path, compressed: bool) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (10, 12, 12, 3), dtype=np.uint8)
    path = tmp_path / "samples.npz"
    (np.savez_compressed if compressed else np.savez)(path, images)
    batches = list(iter_npz_images(path, batch_size=4))
    assert [b.shape[0] for b in batches] == [4, 4, 2]
    got = torch.cat(batches)
    assert got.shape == (10, 3, 12, 12) and got.dtype == torch.float32
    np.testing.assert_allclose(got.permute(0, 2, 3, 1).numpy(), images / 255.0, atol=1e-7)
    assert npz_image_shape(path) == (10, 12, 12, 3) and count_images(path) == 10


def test_npz_single_named_array_and_resize(tmp_path: Path) -> None:
    images = np.random.default_rng(1).integers(0, 256, (3, 20, 30, 3), dtype=np.uint8)
    path = tmp_path / "named.npz"
    np.savez(path, samples=images)
    batches = list(iter_image_batches(path, batch_size=8, size=10))
    assert len(batches) == 1 and batches[0].shape == (3, 3, 10, 10)
    want = np.asarray(center_crop(Image.fromarray(images[2]), 10)) / 255.0
    np.testing.assert_allclose(batches[0][2].permute(1, 2, 0).numpy(), want, atol=1e-7)


def test_npz_errors_name_the_file(tmp_path: Path) -> None:
    two = tmp_path / "two.npz"
    np.savez(two, a=np.zeros((1, 2, 2, 3), np.uint8), b=np.zeros(1))
    with pytest.raises(ValueError, match="two.npz"):
        list(iter_npz_images(two, batch_size=1))
    floats = tmp_path / "floats.npz"
    np.savez(floats, np.zeros((2, 4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="floats.npz.*uint8"):
        list(iter_npz_images(floats, batch_size=1))
    with pytest.raises(ValueError, match="absent.npz"):
        list(iter_npz_images(tmp_path / "absent.npz", batch_size=1))
