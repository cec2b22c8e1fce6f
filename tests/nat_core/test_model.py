import pytest
import torch

from nat_core.checkpoints import CheckpointMismatchError
from nat_core.model import (
    NAT_CONFIGS,
    NATransformer,
    build_nat,
    load_nat_checkpoint,
    xformers_available,
)


def _read_manifest(path):
    rows = {}
    for line in path.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        name, shape, _dtype = line.split("\t")
        rows[name] = tuple(int(x) for x in shape.strip("()").split(",") if x.strip())
    return rows


@pytest.fixture(scope="module")
def parity(reference_dir):
    return torch.load(reference_dir / "nat_parity.pt", weights_only=True)


@pytest.fixture(scope="module")
def parity_model(parity):
    model = NATransformer(**parity["config"]).eval()
    load_nat_checkpoint(model, parity["state_dict"])
    return model


@pytest.mark.parametrize("backend", ["sdpa", "math"])
def test_logits_match_reference(parity, parity_model, backend):
    parity_model.set_attention(backend)
    with torch.no_grad():
        logits = parity_model(parity["masked_ids"], parity["labels"][:, 0])
    assert logits.shape == parity["logits"].shape
    torch.testing.assert_close(logits, parity["logits"], atol=1e-4, rtol=0)
    parity_model.set_attention("sdpa")


def test_strict_load_of_reference_keys(parity):
    model = NATransformer(**parity["config"])
    model.load_state_dict(parity["state_dict"], strict=True)


def test_autonat_l_matches_checkpoint_manifest(reference_dir):
    expected = _read_manifest(reference_dir / "autonat_l_nnet_state_dict.tsv")
    with torch.device("meta"):
        model = build_nat("AutoNAT-L")
    actual = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert actual == expected
    assert sum(v.numel() for v in model.state_dict().values()) == 193_655_297


def test_reference_config_section_passes_straight_in():
    config = {**NAT_CONFIGS["AutoNAT-L"], "use_checkpoint": False}
    with torch.device("meta"):
        model = NATransformer(**config)
    assert model.mask_id == 1024 and model.seq_len == 256


def test_stray_position_ids_is_ignored(parity):
    state = dict(parity["state_dict"])
    state["token_emb.position_ids"] = torch.arange(256)[None]
    model = NATransformer(**parity["config"])
    load_nat_checkpoint(model, state)
    torch.testing.assert_close(
        model.token_emb.word_embeddings.weight,
        parity["state_dict"]["token_emb.word_embeddings.weight"],
    )


def test_mismatch_names_missing_unexpected_and_wrongly_shaped_keys(parity, tmp_path):
    state = dict(parity["state_dict"])
    del state["norm.weight"]
    state["extra.weight"] = torch.zeros(3)
    state["mlm_layer.bias"] = torch.zeros(1, 1, 7)
    path = tmp_path / "nnet_ema.pth"
    torch.save(state, path)
    model = NATransformer(**parity["config"])
    with pytest.raises(CheckpointMismatchError) as error:
        load_nat_checkpoint(model, path)
    message = str(error.value)
    assert str(path) in message
    assert "missing: norm.weight" in message
    assert "unexpected: extra.weight" in message
    assert "mlm_layer.bias (1, 1, 7) != (1, 1, 33)" in message


def test_missing_checkpoint_file_names_path(tmp_path, parity):
    model = NATransformer(**parity["config"])
    with pytest.raises(ValueError, match="checkpoint not found: .*nope.pth"):
        load_nat_checkpoint(model, tmp_path / "nope.pth")


def test_unknown_attention_backend_rejected(parity_model):
    with pytest.raises(ValueError, match="'flash2'"):
        parity_model.set_attention("flash2")


def test_head_gradient_does_not_reach_embedding_through_head(parity):
    model = NATransformer(**parity["config"])
    model.load_state_dict(parity["state_dict"])
    ids = torch.full((1, 256), 32)
    ids[0, 0] = 5
    labels = torch.tensor([0])
    model(ids, labels)[0, 10].sum().backward()
    grad = model.token_emb.word_embeddings.weight.grad
    # Only rows used as *inputs* (5 and the mask id 32) receive gradient; the head's
    # product with the whole matrix contributes none.
    used = grad.abs().sum(dim=1) > 0
    assert used.nonzero().flatten().tolist() == [5, 32]


@pytest.mark.gpu
def test_xformers_agrees_with_sdpa_where_available(parity):
    if not (xformers_available() and torch.cuda.is_available()):
        pytest.skip("xformers comparison needs xformers and a CUDA device; neither is here")
    model = NATransformer(**parity["config"]).cuda().eval()
    load_nat_checkpoint(model, parity["state_dict"])
    ids, labels = parity["masked_ids"].cuda(), parity["labels"][:, 0].cuda()
    with torch.no_grad():
        reference = model(ids, labels)
        model.set_attention("xformers")
        torch.testing.assert_close(model(ids, labels), reference, atol=1e-4, rtol=0)
