"""The transformer baseline and the exact size of float models (nnzip.transformer, nnzip.baseline)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from nnzip.baseline import exact_size, stream_logits, window_starts
from nnzip.config import BOS, PRESETS, TRANSFORMER_TWINS, build_config
from nnzip.model import ByteSSM
from nnzip.train import load_model, train
from nnzip.transformer import ByteTransformer


@pytest.mark.parametrize("preset", ["fast", "small", "base"])
def test_twin_within_five_percent(preset):
    ssm = ByteSSM(PRESETS[preset]).num_parameters()
    transformer = ByteTransformer(TRANSFORMER_TWINS[preset]).num_parameters()
    assert abs(transformer - ssm) / ssm <= 0.05


def test_build_config_transformer():
    assert build_config("small", arch="transformer") == TRANSFORMER_TWINS["small"]
    with pytest.raises(ValueError, match="unknown arch"):
        build_config("small", arch="rnn")


def test_odd_headdim_rejected():
    with pytest.raises(ValueError, match="headdim"):
        build_config("tiny", ["headdim=15", "d_model=45"], arch="transformer")


def test_transformer_is_causal():
    torch.manual_seed(0)
    model = ByteTransformer(TRANSFORMER_TWINS["tiny"]).eval()
    ids = torch.randint(0, 256, (1, 40))
    changed = ids.clone()
    changed[0, 30] = (changed[0, 30] + 1) % 256
    with torch.no_grad():
        a, b = model(ids), model(changed)
    assert torch.equal(a[0, :30], b[0, :30])
    assert not torch.equal(a[0, 30:], b[0, 30:])


class WindowProbe(nn.Module):
    """Logits that report, per position, its index in the window and its input id."""

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(*idx.shape, 256)
        logits[..., 0] = torch.arange(idx.shape[1], dtype=torch.float32)
        logits[..., 1] = idx.float()
        return logits


@pytest.mark.parametrize("length", [1, 16, 17, 40, 101])
def test_stream_logits_windows(length):
    context = 16
    stream = np.random.default_rng(length).integers(0, 256, length, dtype=np.uint8)
    out = stream_logits(WindowProbe(), stream, context)
    history = out[:, 0].numpy()
    inputs = out[:, 1].numpy()
    for t in range(length):
        assert inputs[t] == (BOS if t == 0 else stream[t - 1]), f"position {t} read the wrong input"
        assert history[t] >= min(t, context // 2), f"position {t} has {history[t]} bytes of history"
        assert history[t] == t or t >= context


def test_window_starts_end_at_stream_end():
    assert window_starts(10, 16) == [0]
    assert window_starts(40, 16) == [0, 8, 16, 24]
    assert window_starts(41, 16)[-1] == 25


def test_exact_size_round_trips(corpus):
    torch.manual_seed(0)
    model = ByteTransformer(TRANSFORMER_TWINS["tiny"])
    data = corpus.valid[:5000]
    size = exact_size(model, data, context=64)
    assert size.verified
    assert size.original == 5000
    # An untrained model costs about 8 bits per byte, never more than the 16-bit floor allows.
    assert 6.0 < size.bpb < 16.5


def test_train_transformer_run(tmp_path, tiny_config):
    cfg = dataclasses.replace(tiny_config, arch="transformer", steps=30, eval_every=30)
    result = train(cfg, tmp_path / "run", progress=False)
    assert result["valid_bpb"] < 8.0
    model, meta = load_model(tmp_path / "run")
    assert isinstance(model, ByteTransformer)
    assert meta["model"]["arch"] == "transformer"
