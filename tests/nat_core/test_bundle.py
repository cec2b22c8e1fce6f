import shutil

import numpy as np
import pytest
import torch
import yaml

from nat_core.bundle import BUILTIN_KINDS, BundleError, read_bundle, vqgan_tokenizer
from nat_core.fid import FeatureStats, InceptionFeatures, frechet_distance
from nat_core.pipeline import load_bundle
from nat_core.strategy import GenerationStrategy
from nat_core.vqgan import VQGAN


@pytest.fixture(scope="module")
def tiny(tiny_bundle_path):
    return load_bundle(tiny_bundle_path)


def _copy_bundle(tiny_bundle_path, tmp_path, edit=None):
    folder = tmp_path / "bundle"
    shutil.copytree(tiny_bundle_path.parent, folder)
    path = folder / "tiny.yaml"
    if edit is not None:
        data = yaml.safe_load(path.read_text())
        edit(data, folder)
        path.write_text(yaml.safe_dump(data))
    return path


def test_tiny_bundle_gives_fid_from_a_strategy_end_to_end(tiny):
    strategy = GenerationStrategy.reference_initial(4)
    labels = torch.arange(8) % tiny.spec.classes
    stats = tiny.empty_stats()
    features = tiny.sample_features(strategy, labels, torch.Generator().manual_seed(0))
    assert features.shape == (8, 2048)
    stats.update(features)
    fid = tiny.fid(stats)
    mu = features.double().mean(0)
    sigma = torch.cov(features.double().T)
    expected = frechet_distance(mu, sigma, tiny.reference_mu, tiny.reference_sigma)
    assert np.isfinite(fid) and fid > 0
    assert fid == pytest.approx(expected, rel=1e-6)


def test_images_are_decoded_and_clamped(tiny):
    images = tiny.sample_images(
        GenerationStrategy.reference_initial(2),
        torch.tensor([0, 1]),
        torch.Generator().manual_seed(1),
    )
    assert images.shape == (2, 3, 16, 16)
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0


def test_same_generator_seed_same_features(tiny):
    strategy = GenerationStrategy.reference_initial(3)
    labels = torch.tensor([0, 1, 2, 3])
    a = tiny.sample_features(strategy, labels, torch.Generator().manual_seed(5))
    b = tiny.sample_features(strategy, labels, torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_relative_paths_resolve_against_the_bundle_file(tiny_bundle_path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = read_bundle(tiny_bundle_path)
    assert spec.model.file == tiny_bundle_path.parent / "nnet_ema.pth"
    assert spec.reference_stats.is_file()


def test_fingerprint_records_sizes_and_hashes(tiny_bundle_path):
    fingerprint = read_bundle(tiny_bundle_path).fingerprint()
    files = fingerprint["files"]
    assert set(files) == {
        "model.checkpoint",
        "tokenizer.checkpoint",
        "features.weights",
        "reference_stats",
    }
    assert (
        files["model.checkpoint"]["size"]
        == (tiny_bundle_path.parent / "nnet_ema.pth").stat().st_size
    )
    assert len(files["reference_stats"]["sha256"]) == 64
    assert fingerprint["content"]["name"] == "tiny-random"


def test_missing_file_is_named(tiny_bundle_path, tmp_path):
    path = _copy_bundle(tiny_bundle_path, tmp_path)
    (path.parent / "vqgan.ckpt").unlink()
    with pytest.raises(
        BundleError, match=r"tokenizer\.checkpoint names a missing file: .*vqgan\.ckpt"
    ):
        read_bundle(path)


def test_every_missing_file_is_named_in_one_line(tiny_bundle_path, tmp_path):
    path = _copy_bundle(tiny_bundle_path, tmp_path)
    (path.parent / "nnet_ema.pth").unlink()
    (path.parent / "fid_stats.npz").unlink()
    with pytest.raises(BundleError) as raised:
        read_bundle(path)
    message = str(raised.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    assert "model.checkpoint names a missing file: " in message
    assert "reference_stats names a missing file: " in message
    assert "tokenizer.checkpoint" not in message  # present: not named


def test_wrongly_shaped_checkpoint_is_reported(tiny_bundle_path, tmp_path):
    path = _copy_bundle(tiny_bundle_path, tmp_path)
    state = torch.load(path.parent / "nnet_ema.pth", weights_only=True)
    state["norm.weight"] = torch.ones(7)
    torch.save(state, path.parent / "nnet_ema.pth")
    with pytest.raises(BundleError, match=r"nnet_ema\.pth.*norm\.weight \(7,\) != \(32,\)"):
        load_bundle(path)


def test_wrong_class_count_is_reported(tiny_bundle_path, tmp_path):
    def more_classes(data, folder):
        data["classes"] = 9
        data["null_class"] = 9

    path = _copy_bundle(tiny_bundle_path, tmp_path, more_classes)
    with pytest.raises(BundleError, match="null_class 9 need 10 class embeddings.*num_classes 5"):
        load_bundle(path)


def test_null_class_inside_sampled_classes_is_rejected(tiny_bundle_path, tmp_path):
    path = _copy_bundle(tiny_bundle_path, tmp_path, lambda d, f: d.update(null_class=2))
    with pytest.raises(BundleError, match="null_class 2 collides"):
        read_bundle(path)


def test_reference_stats_of_wrong_dimension_are_reported(tiny_bundle_path, tmp_path):
    path = _copy_bundle(tiny_bundle_path, tmp_path)
    np.savez(path.parent / "fid_stats.npz", mu=np.zeros(64), sigma=np.eye(64))
    with pytest.raises(BundleError, match=r"fid_stats\.npz.*64-d.*2048-d"):
        load_bundle(path)


def test_token_grid_mismatch_is_reported(tiny_bundle_path, tmp_path):
    path = _copy_bundle(tiny_bundle_path, tmp_path, lambda d, f: d.update(tokens_per_side=5))
    with pytest.raises(BundleError, match="tokens_per_side 5 gives 25 tokens, the model takes 16"):
        load_bundle(path)


def test_unknown_keys_are_named(tiny_bundle_path, tmp_path):
    path = _copy_bundle(tiny_bundle_path, tmp_path, lambda d, f: d["model"].update(ckpt="x"))
    with pytest.raises(BundleError, match=r"unknown key model\.ckpt"):
        read_bundle(path)


def test_merged_stats_give_the_same_fid_as_one_pass(tiny):
    strategy = GenerationStrategy.reference_initial(2)
    labels = torch.arange(4)
    parts = [
        tiny.sample_features(strategy, labels, torch.Generator().manual_seed(s)) for s in (0, 1)
    ]
    merged = FeatureStats.empty(2048).update(parts[0]) + FeatureStats.empty(2048).update(parts[1])
    whole = FeatureStats.empty(2048).update(torch.cat(parts))
    assert tiny.fid(merged) == pytest.approx(tiny.fid(whole), rel=1e-6)


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (lambda d: d.update(classes=0), r"classes must be an integer >= 1, got 0"),
        (lambda d: d.update(name=" "), r"name must be a non-empty string, got ' '"),
        (lambda d: d.update(extra=1), r"unknown key extra"),
        (lambda d: d.pop("tokenizer"), r"section 'tokenizer' is missing"),
        (lambda d: d.pop("reference_stats"), r"missing key reference_stats"),
        (lambda d: d["tokenizer"].update(kind=""), r"tokenizer\.kind must be a non-empty string"),
        (lambda d: d["model"].update(config=[1]), r"model\.config must be a mapping, got \[1\]"),
        (lambda d: d["features"].update(weights=5), r"features\.weights must be a file path"),
        (lambda d: d["model"].update({"class": 3}), r"model\.class must be a non-empty string"),
    ],
)
def test_bad_values_are_named_with_the_file(tiny_bundle_path, tmp_path, edit, pattern):
    path = _copy_bundle(tiny_bundle_path, tmp_path, lambda data, folder: edit(data))
    with pytest.raises(BundleError, match=pattern) as info:
        read_bundle(path)
    assert str(info.value).startswith(f"{path}: ")


def test_an_empty_config_means_no_arguments(tiny_bundle_path, tmp_path):
    def no_config(data, folder):
        data["features"]["config"] = None

    assert read_bundle(_copy_bundle(tiny_bundle_path, tmp_path, no_config)).features.config == {}


def test_builtin_kinds_are_an_explicit_table():
    assert dict(BUILTIN_KINDS["tokenizer"]) == {"vqgan": vqgan_tokenizer}
    assert dict(BUILTIN_KINDS["features"]) == {"inception-v3-fid": InceptionFeatures}
    assert dict(BUILTIN_KINDS["model"]) == {}


def test_parts_may_be_named_by_import_path(tiny_bundle_path, tmp_path):
    def by_path(data, folder):
        data["tokenizer"]["kind"] = "nat_core.vqgan:VQGAN"
        data["features"]["kind"] = "nat_core.fid.network:InceptionFeatures"

    bundle = load_bundle(_copy_bundle(tiny_bundle_path, tmp_path, by_path))
    assert isinstance(bundle.tokenizer, VQGAN) and isinstance(bundle.features, InceptionFeatures)


@pytest.mark.parametrize(
    ("kind", "pattern"),
    [
        ("vqgan2", r"tokenizer\.kind 'vqgan2' is neither a built-in kind \(vqgan\)"),
        ("no_such_module:Thing", r"tokenizer\.kind 'no_such_module:Thing' cannot be imported"),
        ("nat_core.vqgan:NoSuchClass", r"cannot be imported"),
    ],
)
def test_unknown_kinds_are_named(tiny_bundle_path, tmp_path, kind, pattern):
    path = _copy_bundle(tiny_bundle_path, tmp_path, lambda d, f: d["tokenizer"].update(kind=kind))
    with pytest.raises(BundleError, match=pattern):
        load_bundle(path)
