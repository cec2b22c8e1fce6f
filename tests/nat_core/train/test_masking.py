"""The training objective: Beta(12, 3) masking, null-class dropout, the masked loss."""

import torch
from scipy import stats

from nat_core.train import drop_labels, mask_tokens, sample_mask_ratios


def test_mask_tokens_follows_beta_12_3():
    codes = torch.randint(0, 8, (20000, 64), generator=torch.Generator().manual_seed(1))
    ids, targets = mask_tokens(codes, mask_id=8, generator=torch.Generator().manual_seed(2))
    masked = ids == 8
    assert abs(masked.float().mean().item() - 0.8) < 0.01
    assert masked.sum(1).min() >= 1
    assert torch.equal(targets, torch.where(masked, codes, -1))
    assert torch.equal(ids, torch.where(masked, 8, codes))
    # Masked positions are spread evenly over the sequence.
    per_position = masked.float().mean(0)
    assert (per_position - 0.8).abs().max() < 0.03
    again, _ = mask_tokens(codes, mask_id=8, generator=torch.Generator().manual_seed(2))
    assert torch.equal(again, ids)


def test_mask_ratios_are_beta_distributed():
    ratios = sample_mask_ratios(20000, beta=(12.0, 3.0), generator=torch.Generator().manual_seed(3))
    assert ratios.dtype == torch.float64
    assert stats.kstest(ratios.numpy(), stats.beta(12, 3).cdf).pvalue > 1e-3
    assert abs(ratios.mean().item() - 0.8) < 0.005
    assert abs(ratios.var().item() - 0.01) < 0.001


def test_masking_never_masks_zero_tokens():
    codes = torch.zeros(5000, 16, dtype=torch.long)
    ids, targets = mask_tokens(
        codes,
        mask_id=8,
        beta=(0.5, 400.0),
        ignore_index=-100,
        generator=torch.Generator().manual_seed(4),
    )
    counts = (ids == 8).sum(1)
    assert counts.min() == 1 and (counts == 1).float().mean() > 0.95
    assert set(targets.unique().tolist()) == {-100, 0}
    ids, _ = mask_tokens(
        codes, mask_id=8, beta=(400.0, 0.5), generator=torch.Generator().manual_seed(5)
    )
    assert (ids == 8).all()


def test_null_class_dropout_rate():
    labels = torch.randint(0, 1000, (200000,), generator=torch.Generator().manual_seed(6))
    out = drop_labels(labels, p=0.15, null_class=1000, generator=torch.Generator().manual_seed(7))
    dropped = out == 1000
    assert abs(dropped.float().mean().item() - 0.15) < 0.005
    assert torch.equal(out[~dropped], labels[~dropped])
    g = torch.Generator().manual_seed(8)
    assert torch.equal(drop_labels(labels, p=0.0, null_class=1000, generator=g), labels)
    assert (drop_labels(labels, p=1.0, null_class=1000, generator=g) == 1000).all()
