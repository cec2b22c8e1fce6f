"""The learning-rate warm-up and the EMA rule."""

import pytest
import torch

from nat_core.train import ema_update, warmup_lr


def test_ema_update_follows_the_reference_rule():
    ema, model = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    expected = 0.9 * ema.weight.detach() + 0.1 * model.weight.detach()
    ema_update(ema, model, 0.9)
    torch.testing.assert_close(ema.weight, expected)
    ema_update(ema, model, 0.0)
    assert torch.equal(ema.weight, model.weight)


def test_warmup_is_linear_then_constant():
    lrs = [warmup_lr(s, base_lr=4e-4, warmup_steps=5000) for s in (1, 2500, 5000, 9000)]
    assert lrs == pytest.approx([4e-4 / 5000, 2e-4, 4e-4, 4e-4])
    assert warmup_lr(1, base_lr=1e-3, warmup_steps=-1) == 1e-3
