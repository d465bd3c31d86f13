import pytest
import torch

from nnzip.coder import TOTAL
from nnzip.objective import bpb_loss, quantize_probs


def random_probs(seed: int, rows: int, temperature: float) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(rows, 256, generator=generator) / temperature
    return torch.softmax(logits, dim=-1)


def one_hot_probs() -> torch.Tensor:
    p = torch.zeros(4, 256)
    for row, symbol in enumerate([0, 1, 128, 255]):
        p[row, symbol] = 1.0
    return p


DISTRIBUTIONS = {
    "uniform": lambda: torch.full((2, 256), 1.0 / 256),
    "random": lambda: random_probs(0, 64, temperature=1.0),
    "peaked": lambda: random_probs(1, 64, temperature=0.02),
    "one_hot": one_hot_probs,
    "random_float64": lambda: random_probs(2, 16, temperature=0.5).double(),
}


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_quantize_probs_invariants(name):
    f = quantize_probs(DISTRIBUTIONS[name]())
    assert torch.equal(f, torch.round(f)), "frequencies are not whole numbers"
    assert f.min().item() >= 1
    assert torch.all(f.sum(-1) == TOTAL)


def test_quantize_probs_uniform_values():
    f = quantize_probs(torch.full((1, 256), 1.0 / 256))
    assert torch.all(f == TOTAL // 256)


def test_quantize_probs_one_hot_values():
    f = quantize_probs(one_hot_probs())
    assert f[0, 0].item() == TOTAL - 255
    assert f[0, 1:].max().item() == 1


def test_bpb_loss_value():
    generator = torch.Generator().manual_seed(3)
    logits = torch.randn(4, 50, 256, generator=generator) * 3
    targets = torch.randint(0, 256, (4, 50), generator=generator)

    loss = bpb_loss(logits, targets)

    f = quantize_probs(torch.softmax(logits, dim=-1))
    expected = -torch.log2(f.gather(-1, targets[..., None]) / TOTAL).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_bpb_loss_bounded_by_16_bits():
    logits = torch.zeros(1, 256)
    logits[0, 0] = 1000.0
    loss = bpb_loss(logits, torch.tensor([255]))
    assert loss.item() == pytest.approx(16.0, abs=1e-6)


def test_bpb_loss_gradient():
    generator = torch.Generator().manual_seed(4)
    logits = (torch.randn(8, 256, generator=generator) * 2).requires_grad_()
    targets = torch.randint(0, 256, (8,), generator=generator)

    bpb_loss(logits, targets).backward()

    assert torch.isfinite(logits.grad).all()
    assert logits.grad.abs().sum().item() > 0
