"""Reference statistics files: round trip and one-line errors naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from nat_core.fid import ReferenceStatsError, load_reference_stats, save_reference_stats


def random_spd(rng: np.random.Generator, d: int, n: int) -> np.ndarray:
    a = rng.standard_normal((d, n))
    return a @ a.T / n + 1e-6 * np.eye(d)


def test_reference_stats_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    mu, sigma = rng.standard_normal(8), random_spd(rng, 8, 16)
    path = save_reference_stats(tmp_path / "sub" / "ref_stats", torch.from_numpy(mu), sigma)
    assert path == tmp_path / "sub" / "ref_stats"  # no ".npz" appended behind our back
    got_mu, got_sigma = load_reference_stats(path, feature_dim=8)
    np.testing.assert_array_equal(got_mu, mu)
    np.testing.assert_array_equal(got_sigma, sigma)
    with np.load(path) as data:  # readable as pytorch-fid reads it
        assert sorted(data.files) == ["mu", "sigma"]


@pytest.mark.parametrize(
    ("mu", "sigma", "feature_dim", "match"),
    [
        (np.zeros((2, 4)), np.eye(4), None, "1-D"),
        (np.zeros(4), np.eye(3), None, r"\(4, 4\)"),
        (np.zeros(4), np.eye(4), 2048, "2048"),
        (np.full(4, np.nan), np.eye(4), None, "non-finite"),
    ],
)
def test_reference_stats_wrong_shapes_name_the_file(
    tmp_path: Path, mu: np.ndarray, sigma: np.ndarray, feature_dim: int | None, match: str
) -> None:
    path = tmp_path / "bad_stats.npz"
    np.savez(path, mu=mu, sigma=sigma)
    with pytest.raises(ReferenceStatsError, match=match) as info:
        load_reference_stats(path, feature_dim=feature_dim)
    assert str(path) in str(info.value)


def test_reference_stats_missing_file_and_keys(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.npz"
    with pytest.raises(ReferenceStatsError, match="not found") as info:
        load_reference_stats(missing)
    assert str(missing) in str(info.value)
    no_sigma = tmp_path / "no_sigma.npz"
    np.savez(no_sigma, mu=np.zeros(3))
    with pytest.raises(ReferenceStatsError, match="sigma"):
        load_reference_stats(no_sigma)
    with pytest.raises(ReferenceStatsError, match="1-D"):
        save_reference_stats(tmp_path / "x.npz", np.zeros((2, 2)), np.eye(2))
