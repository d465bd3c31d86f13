"""The baseline: a vanilla decoder-only byte transformer, trained by the same code as the SSM.

Pre-norm blocks of causal multi-head self-attention with rotary positions and a GELU MLP, the
same embedding (bytes plus BOS) and the same 256-logit head as `nnzip.model.ByteSSM`. It exists
to test nnzip's claim against a same-size transformer, so it stays a float model: its bpb is
measured through the coder's frequency quantization and range coder in Python
(`nnzip.baseline`), and it has no integer export.

Config fields: d_model, n_layer, headdim (attention heads = d_model / headdim) and expand (MLP
width = expand * d_model). The SSM fields d_state and d_conv are unused.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nnzip.config import INPUT_VOCAB, VOCAB_SIZE, ModelConfig
from nnzip.model import RMSNorm

ROPE_BASE = 10_000.0


def rotary_tables(length: int, dim: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables (length, dim / 2) of the rotary position angles."""
    inv_freq = ROPE_BASE ** (-torch.arange(0, dim, 2, device=device, dtype=torch.float32) / dim)
    angles = torch.arange(length, device=device, dtype=torch.float32)[:, None] * inv_freq[None, :]
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs of x (b, heads, T, dim) by the position angles."""
    even, odd = x[..., 0::2], x[..., 1::2]
    rotated = torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1)
    return rotated.flatten(-2)


class Attention(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.n_heads = config.d_model // config.headdim
        self.headdim = config.headdim
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=False)
        self.out = nn.Linear(config.d_model, config.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_heads, self.headdim).permute(2, 0, 3, 1, 4)
        cos, sin = rotary_tables(t, self.headdim, x.device)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out(y.transpose(1, 2).reshape(b, t, d))


class MLP(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        hidden = config.expand * config.d_model
        self.up = nn.Linear(config.d_model, hidden, bias=False)
        self.down = nn.Linear(hidden, config.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.gelu(self.up(x)))


class TransformerBlock(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(config.d_model)
        self.attn = Attention(config)
        self.mlp_norm = RMSNorm(config.d_model)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x))
        return x + self.mlp(self.mlp_norm(x))


class ByteTransformer(nn.Module):
    """Embedding, causal transformer blocks, final norm and a linear head to 256 logits."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.embedding = nn.Embedding(INPUT_VOCAB, config.d_model)
        self.layers = nn.ModuleList(TransformerBlock(config) for _ in range(config.n_layer))
        self.norm_f = RMSNorm(config.d_model)
        self.head = nn.Linear(config.d_model, VOCAB_SIZE)
        nn.init.normal_(self.embedding.weight, std=1.0)
        for name, param in self.named_parameters():
            if name.endswith(("out.weight", "down.weight")):
                # Scaled residual branches, as in GPT-2, so that depth does not grow the stream.
                nn.init.normal_(param, std=0.02 / (2 * config.n_layer) ** 0.5)

    def set_qat(self, enabled: bool) -> None:
        """No-op: the baseline is a float model (see the module docstring)."""

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx (b, T) input ids (bytes or BOS) -> logits (b, T, 256); logits[:, t] predicts the byte after idx[:, t]."""
        x = self.embedding(idx)
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm_f(x))
