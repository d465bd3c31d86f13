"""The training objective: bits per byte of the integer frequencies the coder uses.

The coder receives frequencies f over 256 bytes with a fixed total FREQ_TOTAL and every f >= 1.
Training quantizes the softmax the same way: f = 1 + floor(p * (FREQ_TOTAL - 256)), and the
rounding remainder goes to the most probable byte. The loss is -log2(f[y] / FREQ_TOTAL).
Rounding has no gradient, so the loss uses the straight-through estimator: the forward value is
the quantized probability, the gradient is that of the smooth surrogate
q = p * (1 - 256 / FREQ_TOTAL) + 1 / FREQ_TOTAL, which differs from f / FREQ_TOTAL by less than
1 / FREQ_TOTAL per byte. The floor of 1 / FREQ_TOTAL per byte is part of q, so the model is
trained knowing that no byte can cost more than 16 bits. See docs/objective.md.
"""

from __future__ import annotations

import torch

from nnzip.coder import TOTAL as FREQ_TOTAL
from nnzip.config import VOCAB_SIZE

FREE_MASS = FREQ_TOTAL - VOCAB_SIZE  # frequency units left after the floor of 1 per byte


def quantize_probs(p: torch.Tensor) -> torch.Tensor:
    """Integer frequencies (as float) from probabilities p (..., 256); each row sums to FREQ_TOTAL."""
    f = torch.floor(p * FREE_MASS) + 1.0
    remainder = FREQ_TOTAL - f.sum(-1, keepdim=True)
    top = p.argmax(-1, keepdim=True)
    return f.scatter_add(-1, top, remainder)


def bpb_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean bits per byte of `targets` (...,) under the quantized distribution of `logits` (..., 256)."""
    p = torch.softmax(logits.float(), dim=-1)
    q_soft = p * (FREE_MASS / FREQ_TOTAL) + 1.0 / FREQ_TOTAL
    with torch.no_grad():
        q_hard = quantize_probs(p) / FREQ_TOTAL
    q = q_soft + (q_hard - q_soft).detach()
    q_target = q.gather(-1, targets[..., None].long()).squeeze(-1)
    return -torch.log2(q_target).mean()
