"""The locally built FID Inception: local weights only, pytorch-fid's outputs."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
import torch

from nat_core.fid import (
    INCEPTION_WEIGHTS_FILENAME,
    FeatureWeightsError,
    InceptionFeatures,
    build_feature_extractor,
    build_fid_inception_network,
)

# pytorch-fid 0.3.0 passes scipy's deprecated `disp` to sqrtm.
pytestmark = pytest.mark.filterwarnings("ignore:The `disp` argument:DeprecationWarning")


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
