"""fid-stats, tokenize and pretrain through the command line."""

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from typer.testing import CliRunner

from autonat_search.cli import app
from nat_core.fid import INCEPTION_WEIGHTS_FILENAME, InceptionFeatures, load_reference_stats
from nat_core.image_folder import load_image
from nat_core.model import NATransformer, load_nat_checkpoint

runner = CliRunner()


def _write_pngs(folder, count, size, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def test_fid_stats_from_a_folder_and_from_an_npz(tmp_path, tiny_bundle_path):
    weights = tiny_bundle_path.parent / INCEPTION_WEIGHTS_FILENAME
    paths = _write_pngs(tmp_path / "images", 3, 40)
    out = tmp_path / "stats.npz"
    result = runner.invoke(
        app,
        [
            "fid-stats",
            str(tmp_path / "images"),
            "-o",
            str(out),
            "--inception-weights",
            str(weights),
            "--size",
            "32",
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    mu, sigma = load_reference_stats(out, feature_dim=2048)
    features = InceptionFeatures(weights_path=weights)(
        torch.stack([load_image(p, 32) for p in paths])
    ).double()
    np.testing.assert_allclose(mu, features.mean(0).numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(sigma, torch.cov(features.T).numpy(), rtol=1e-4, atol=1e-7)

    arrays = np.stack([np.asarray(Image.open(p)) for p in paths])
    np.savez(tmp_path / "images.npz", arrays)
    out_npz = tmp_path / "stats_npz.npz"
    result = runner.invoke(
        app,
        [
            "fid-stats",
            str(tmp_path / "images.npz"),
            "-o",
            str(out_npz),
            "--inception-weights",
            str(weights),
            "--size",
            "32",
        ],
    )
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(load_reference_stats(out_npz)[0], mu, rtol=1e-4, atol=1e-6)


def test_tokenize_a_class_folder_with_the_pixel_tokenizer(tmp_path, quick_digits_bundle):
    for label in ("a", "b"):
        _write_pngs(tmp_path / "images" / label, 2, 8, seed=len(label))
    out = tmp_path / "tokens.npy"
    result = runner.invoke(
        app,
        [
            "tokenize",
            str(tmp_path / "images"),
            "-o",
            str(out),
            "--bundle",
            str(quick_digits_bundle),
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = np.load(out)
    assert rows.shape == (4, 1 + 64) and rows.dtype == np.int64
    assert rows[:, 0].tolist() == [0, 0, 1, 1]
    assert rows[:, 1:].min() >= 0 and rows[:, 1:].max() <= 16
    flipped = tmp_path / "flipped.npy"
    result = runner.invoke(
        app,
        [
            "tokenize",
            str(tmp_path / "images"),
            "-o",
            str(flipped),
            "--bundle",
            str(quick_digits_bundle),
            "--flip",
        ],
    )
    assert result.exit_code == 0, result.output
    both = np.load(flipped)
    assert len(both) == 8  # with --flip, each image and its mirror image
    np.testing.assert_array_equal(both[0::2], rows)
    np.testing.assert_array_equal(both[1, 1:].reshape(8, 8), rows[0, 1:].reshape(8, 8)[:, ::-1])


def test_pretrain_runs_a_reference_layout_config(tmp_path):
    rng = np.random.default_rng(0)
    rows = np.concatenate([rng.integers(0, 3, (32, 1)), rng.integers(0, 8, (32, 16))], axis=1)
    np.save(tmp_path / "tokens.npy", rows.astype(np.int64))
    nnet = dict(
        img_size=4,
        codebook_size=8,
        embed_dim=32,
        depth=2,
        num_heads=2,
        mlp_ratio=2,
        qkv_bias=False,
        num_classes=4,
        use_checkpoint=False,
        skip=True,
    )
    config = {
        "train": {"n_steps": 3, "batch_size": 8, "log_interval": 1, "save_interval": 3},
        "optimizer": {"name": "adamw", "lr": 0.0004, "weight_decay": 0.03, "betas": [0.99, 0.99]},
        "lr_scheduler": {"name": "customized", "warmup_steps": 2},
        "nnet": nnet,
        "muse": {"ignore_ind": -1, "smoothing": 0.1},
        "dataset": {
            "name": "tokens",
            "path": str(tmp_path / "tokens.npy"),
            "cfg": True,
            "p_uncond": 0.15,
        },
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = runner.invoke(
        app,
        [
            "pretrain",
            str(tmp_path / "config.yaml"),
            "--out-dir",
            str(tmp_path / "run"),
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    model = NATransformer(**{k: v for k, v in nnet.items() if k != "use_checkpoint"})
    load_nat_checkpoint(model, tmp_path / "run" / "nnet_ema.pth")


@pytest.mark.parametrize("args", [["fid-stats", "x", "-o", "y.npz"]])
def test_fid_stats_needs_exactly_one_extractor(args, tmp_path):
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    assert "exactly one of --bundle and --inception-weights" in str(result.exception)
