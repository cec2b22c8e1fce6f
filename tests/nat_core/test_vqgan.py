from pathlib import Path
from typing import Any

import pytest
import torch

from nat_core.vqgan import VQGAN, VQGAN_CONFIGS, build_vqgan, load_vqgan_checkpoint


@pytest.fixture(scope="module")
def parity(reference_dir: Path) -> dict[str, Any]:
    return torch.load(reference_dir / "vqgan_parity.pt", weights_only=True)


@pytest.fixture(scope="module")
def parity_model(parity: dict[str, Any]) -> VQGAN:
    model = VQGAN(
        ddconfig=parity["ddconfig"], n_embed=parity["n_embed"], embed_dim=parity["embed_dim"]
    )
    model.load_state_dict(parity["state_dict"], strict=True)
    return model.eval()


def _manifest(path: Path) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, shape, _dtype = line.split("\t")
        shapes[name] = tuple(int(n) for n in shape.strip("()").split(",") if n.strip())
    return shapes


def test_decode_matches_reference(parity: dict[str, Any], parity_model: VQGAN) -> None:
    with torch.no_grad():
        decoded = parity_model.decode(parity["codes"])
    assert decoded.shape == parity["decoded"].shape
    torch.testing.assert_close(decoded, parity["decoded"], atol=1e-4, rtol=0.0)


def test_encode_matches_reference(parity: dict[str, Any], parity_model: VQGAN) -> None:
    with torch.no_grad():
        codes = parity_model.encode(parity["images"])
    assert codes.dtype == torch.int64
    assert torch.equal(codes, parity["encoded_codes"])


def test_kwargs_construction_and_properties(parity: dict[str, Any]) -> None:
    model = VQGAN(n_embed=parity["n_embed"], embed_dim=parity["embed_dim"], **parity["ddconfig"])
    load_vqgan_checkpoint(model, {"state_dict": parity["state_dict"]})
    assert model.downsample_factor == 4
    assert model.codebook_size == parity["n_embed"]


def test_full_model_matches_manifest(reference_dir: Path) -> None:
    expected = _manifest(reference_dir / "vqgan_f16_1024_state_dict.tsv")
    with torch.device("meta"):
        model = build_vqgan("vqgan-f16-1024")
    actual = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert set(actual) == set(expected)
    assert actual == expected
    assert len(actual) == 168
    assert sum(v.numel() for v in model.state_dict().values()) == 54_515_587
    assert model.downsample_factor == 16
    assert model.codebook_size == VQGAN_CONFIGS["vqgan-f16-1024"]["n_embed"] == 1024


def test_checkpoint_file_roundtrip(parity: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "vqgan.ckpt"
    torch.save({"state_dict": parity["state_dict"]}, path)
    model = VQGAN(
        ddconfig=parity["ddconfig"], n_embed=parity["n_embed"], embed_dim=parity["embed_dim"]
    )
    load_vqgan_checkpoint(model, path)
    key = "quantize.embedding.weight"
    assert torch.equal(model.state_dict()[key], parity["state_dict"][key])


def test_mismatched_state_dict_names_every_problem(parity: dict[str, Any]) -> None:
    state = dict(parity["state_dict"])
    del state["decoder.conv_out.bias"]
    state["encoder.quant_conv.weight"] = torch.zeros(1)
    state["quantize.embedding.weight"] = torch.zeros(3, 5)
    model = VQGAN(
        ddconfig=parity["ddconfig"], n_embed=parity["n_embed"], embed_dim=parity["embed_dim"]
    )
    with pytest.raises(ValueError) as excinfo:
        load_vqgan_checkpoint(model, state)
    message = str(excinfo.value)
    assert "decoder.conv_out.bias" in message
    assert "encoder.quant_conv.weight" in message
    assert "quantize.embedding.weight" in message
    assert "missing" in message and "unexpected" in message and "shape" in message


def test_unknown_ddconfig_key_is_rejected(parity: dict[str, Any]) -> None:
    cfg = {**parity["ddconfig"], "use_attention": True}
    with pytest.raises(ValueError, match="use_attention"):
        VQGAN(ddconfig=cfg, n_embed=parity["n_embed"], embed_dim=parity["embed_dim"])


def test_unknown_config_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="vqgan-f8"):
        build_vqgan("vqgan-f8")


def test_out_of_range_codes_are_rejected(parity_model: VQGAN) -> None:
    with pytest.raises(ValueError, match="64"):
        parity_model.decode(torch.full((1, 2, 2), 64, dtype=torch.long))
