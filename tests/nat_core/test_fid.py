from __future__ import annotations

import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from pytorch_fid.fid_score import calculate_frechet_distance
from torch import nn

from nat_core import fid
from nat_core.fid import (
    INCEPTION_WEIGHTS_FILENAME,
    FeatureStats,
    FeatureWeightsError,
    InceptionFeatures,
    ReferenceStatsError,
    build_feature_extractor,
    build_fid_inception_network,
    fid_from_stats,
    frechet_distance,
    load_reference_stats,
    register_feature_extractor,
    save_reference_stats,
    stats_from_images,
)

# pytorch-fid 0.3.0 passes scipy's deprecated `disp` to sqrtm.
pytestmark = pytest.mark.filterwarnings("ignore:The `disp` argument:DeprecationWarning")


def random_spd(rng: np.random.Generator, d: int, n: int, eps: float = 1e-6) -> np.ndarray:
    a = rng.standard_normal((d, n))
    return a @ a.T / n + eps * np.eye(d)


def rel_diff(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


# --------------------------------------------------------------------------- Frechet distance


@pytest.mark.parametrize("d", [64, 2048])
def test_frechet_distance_matches_pytorch_fid(d: int) -> None:
    rng = np.random.default_rng(d)
    sigma1, sigma2 = random_spd(rng, d, 2 * d), random_spd(rng, d, 3 * d)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d) + 0.1
    ours = frechet_distance(mu1, sigma1, mu2, sigma2)
    theirs = float(calculate_frechet_distance(mu1, sigma1, mu2, sigma2))
    assert rel_diff(ours, theirs) < 1e-6


@pytest.mark.parametrize("ref_samples", [256, 40], ids=["sigma2-definite", "both-singular"])
def test_frechet_distance_singular_sigma1_fallback_matches(ref_samples: int) -> None:
    rng = np.random.default_rng(ref_samples)
    d = 64
    x = rng.standard_normal((32, d)) + 0.5  # fewer samples than dimensions
    y = 1.3 * rng.standard_normal((ref_samples, d))
    mu1, sigma1 = x.mean(0), np.cov(x, rowvar=False)
    mu2, sigma2 = y.mean(0), np.cov(y, rowvar=False)
    assert int(torch.linalg.cholesky_ex(torch.from_numpy(sigma1))[1]) != 0
    ours = frechet_distance(mu1, sigma1, mu2, sigma2)
    theirs = float(calculate_frechet_distance(mu1, sigma1, mu2, sigma2))
    assert rel_diff(ours, theirs) < 1e-6
    # Exact trace term: S1 = Xc^T Xc / (n - 1), so the nonzero eigenvalues of S1 S2 are
    # those of the small Xc S2 Xc^T / (n - 1).
    xc = x - mu1
    small = xc @ sigma2 @ xc.T / (len(x) - 1)
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((small + small.T) / 2), 0, None)).sum()
    exact = ((mu1 - mu2) ** 2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_sqrt
    assert rel_diff(ours, exact) < 1e-8
    assert rel_diff(frechet_distance(mu2, sigma2, mu1, sigma1), exact) < 1e-8


def test_frechet_distance_accepts_tensors_and_is_zero_for_equal_gaussians() -> None:
    rng = np.random.default_rng(2)
    sigma = random_spd(rng, 32, 64)
    mu = rng.standard_normal(32)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-9 * np.trace(sigma)
    sigma2 = random_spd(rng, 32, 40)
    from_numpy = frechet_distance(mu, sigma, 0 * mu, sigma2)
    from_tensors = frechet_distance(
        torch.from_numpy(mu), torch.from_numpy(sigma), torch.zeros(32), torch.from_numpy(sigma2)
    )
    assert from_tensors == pytest.approx(from_numpy, rel=1e-12)


def test_frechet_distance_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="sigma2"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(4))
    with pytest.raises(ValueError, match="lengths"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(3))


# --------------------------------------------------------------------------- statistics


def test_stats_batches_and_merged_shards_equal_all_at_once() -> None:
    rng = np.random.default_rng(3)
    d = 48
    feats = rng.standard_normal((500, d)) * rng.uniform(0.1, 3.0, d) + rng.uniform(0, 5, d)
    cuts = [0, 3, 40, 41, 170, 300, 301, 500]  # 7 uneven batches

    batched = FeatureStats.empty(d)
    for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
        batched.update(torch.from_numpy(feats[lo:hi]))
    shards = [
        FeatureStats.empty(d).update(feats[lo:hi]) for lo, hi in [(0, 123), (123, 124), (124, 500)]
    ]
    merged = shards[0] + shards[1] + shards[2]
    summed = sum(shards)
    travelled = FeatureStats.from_numpy_dict(merged.to_numpy_dict())

    want_mu, want_cov = feats.mean(0), np.cov(feats, rowvar=False)
    for stats in (batched, merged, summed, travelled):
        assert isinstance(stats, FeatureStats)
        assert stats.count == 500
        np.testing.assert_allclose(stats.mean().numpy(), want_mu, rtol=0, atol=1e-10)
        np.testing.assert_allclose(stats.covariance().numpy(), want_cov, rtol=0, atol=1e-10)
    assert shards[0].count == 123  # merging does not mutate its operands


def test_stats_errors() -> None:
    with pytest.raises(ValueError, match="dim 4 and 5"):
        FeatureStats.empty(4).merge(FeatureStats.empty(5))
    with pytest.raises(ValueError, match=r"\(B, 4\)"):
        FeatureStats.empty(4).update(torch.zeros(2, 5))
    one = FeatureStats.empty(4).update(torch.ones(1, 4))
    with pytest.raises(ValueError, match="at least 2"):
        one.covariance()
    with pytest.raises(ValueError, match="lacks"):
        FeatureStats.from_numpy_dict({"count": 1})


def test_fid_from_stats_matches_pytorch_fid() -> None:
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((300, 16)), rng.standard_normal((400, 16)) * 1.5 + 0.2
    stats = FeatureStats.empty(16).update(x)
    ref_mu, ref_sigma = y.mean(0), np.cov(y, rowvar=False)
    want = calculate_frechet_distance(x.mean(0), np.cov(x, rowvar=False), ref_mu, ref_sigma)
    assert rel_diff(fid_from_stats(stats, ref_mu, ref_sigma), float(want)) < 1e-9


# --------------------------------------------------------------------------- registry


class TinyExtractor(nn.Module):
    def __init__(self, dim: int = 5) -> None:
        super().__init__()
        self.feature_dim = dim
        self.proj = nn.Linear(3, dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.proj(images.mean(dim=(2, 3)))


def test_registry_builds_registered_and_rejects_unknown() -> None:
    register_feature_extractor("tiny-test", TinyExtractor, replace=True)
    extractor = build_feature_extractor("tiny-test", dim=7)
    assert extractor.feature_dim == 7 and not extractor.training
    with pytest.raises(ValueError, match="inception-v3-fid") as info:
        build_feature_extractor("no-such-extractor")
    assert "tiny-test" in str(info.value)
    with pytest.raises(ValueError, match="already registered"):
        register_feature_extractor("tiny-test", lambda: TinyExtractor())


def test_stats_from_images_accepts_tensors_and_loader_tuples() -> None:
    gen = torch.Generator().manual_seed(0)
    extractor = TinyExtractor(4).eval()
    images = torch.rand(10, 3, 8, 8, generator=gen)
    batches = [images[:3], (images[3:7], torch.zeros(4)), [images[7:]]]
    stats = stats_from_images(batches, extractor, device="cpu", progress=False)
    with torch.no_grad():
        feats = extractor(images).double().numpy()
    assert stats.count == 10
    np.testing.assert_allclose(stats.mean().numpy(), feats.mean(0), atol=1e-6)
    stats.update(torch.zeros(1, 4))  # the result is not an inference tensor: still updatable
    assert (stats + stats).count == 22


# --------------------------------------------------------------------------- Inception


@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    torch.manual_seed(0)
    state_dict = build_fid_inception_network().state_dict()
    path = tmp_path_factory.mktemp("assets") / INCEPTION_WEIGHTS_FILENAME
    torch.save(state_dict, path)
    return path, state_dict


def _no_network(*args: object, **kwargs: object) -> None:
    raise AssertionError("network access attempted")


def test_inception_loads_local_file_without_network(
    inception_weights: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    import pytorch_fid.inception

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", _no_network)
    monkeypatch.setattr(pytorch_fid.inception, "load_state_dict_from_url", _no_network)
    monkeypatch.setattr(urllib.request, "urlopen", _no_network)
    path, state_dict = inception_weights
    model = build_feature_extractor("inception-v3-fid", weights_path=path)
    assert isinstance(model, InceptionFeatures) and model.feature_dim == 2048
    conv = state_dict["Conv2d_1a_3x3.conv.weight"]
    assert torch.equal(model.blocks[0].conv.weight, conv)
    with torch.no_grad():
        out = model(torch.rand(2, 3, 64, 48, generator=torch.Generator().manual_seed(1)))
    assert out.shape == (2, 2048) and out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_inception_matches_pytorch_fid_network(
    inception_weights: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    import pytorch_fid.inception

    path, state_dict = inception_weights
    monkeypatch.setattr(
        pytorch_fid.inception, "load_state_dict_from_url", lambda *a, **k: state_dict
    )
    theirs = pytorch_fid.inception.InceptionV3([3], resize_input=True, normalize_input=True)
    ours = InceptionFeatures(weights_path=path)
    x = torch.rand(2, 3, 40, 56, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want = theirs.eval()(x)[0].flatten(1)
        got = ours(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6 * float(want.abs().max()))


def test_inception_missing_file_says_where(tmp_path: Path) -> None:
    path = tmp_path / "assets" / INCEPTION_WEIGHTS_FILENAME
    with pytest.raises(FeatureWeightsError) as info:
        InceptionFeatures(weights_path=path)
    message = str(info.value)
    assert str(path) in message and "download" in message.lower()
    assert isinstance(info.value, ValueError)


def test_inception_wrong_state_dict_is_clear_error(
    inception_weights: tuple[Path, dict], tmp_path: Path
) -> None:
    _, state_dict = inception_weights
    wrong = tmp_path / "missing-key.pth"
    torch.save({k: v for k, v in state_dict.items() if not k.startswith("Mixed_7c")}, wrong)
    with pytest.raises(FeatureWeightsError, match="does not match") as info:
        InceptionFeatures(weights_path=wrong)
    assert str(wrong) in str(info.value)

    reshaped = tmp_path / "bad-shape.pth"
    bad = dict(state_dict)
    bad["fc.weight"] = torch.zeros(10, 2048)
    torch.save(bad, reshaped)
    with pytest.raises(FeatureWeightsError, match=str(reshaped)):
        InceptionFeatures(weights_path=reshaped)

    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(FeatureWeightsError, match="garbage.pth"):
        InceptionFeatures(weights_path=garbage)

    not_dict = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], not_dict)
    with pytest.raises(FeatureWeightsError, match="state dict"):
        InceptionFeatures(weights_path=not_dict)


# --------------------------------------------------------------------------- reference stats


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


def test_module_has_no_service_imports() -> None:
    source = Path(fid.__file__).read_text()
    for name in ("optuna", "ray", "sqlalchemy", "typer"):
        assert f"import {name}" not in source and f"from {name}" not in source
