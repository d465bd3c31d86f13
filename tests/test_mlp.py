"""The MLP sub-blocks (gated and KAN): float model, integer export and their agreement."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from nnzip.coder import TOTAL
from nnzip.config import BOS, build_config
from nnzip.errors import ModelLoadError
from nnzip.export import export_model
from nnzip.intmodel import IntModel
from nnzip.model import ByteSSM
from nnzip.objective import bpb_loss
from nnzip.train import load_model, train

MLPS = {"gated": ["mlp=gated", "mlp_hidden=40"], "kan": ["mlp=kan", "kan_grid=4"]}


@pytest.fixture(scope="module", params=sorted(MLPS))
def mlp_run(request, tmp_path_factory, tiny_config, corpus):
    """(kind, float model, integer export, its path) of a tiny model with the MLP, trained for seconds."""
    kind = request.param
    folder = tmp_path_factory.mktemp(f"mlp-{kind}")
    cfg = dataclasses.replace(tiny_config, overrides=MLPS[kind], steps=200, eval_every=200)
    train(cfg, folder / "run", progress=False)
    model, _ = load_model(folder / "run")
    model.set_qat(True)
    model.eval()
    path = folder / "export.safetensors"
    intmodel = export_model(model, np.frombuffer(corpus.train, np.uint8), path)
    return kind, model, intmodel, path


def code_length_bits(freqs: np.ndarray, symbols: np.ndarray) -> float:
    return float(-np.log2(freqs[np.arange(len(symbols)), symbols] / TOTAL).sum())


def test_export_close_to_float(mlp_run, corpus):
    kind, model, intmodel, _ = mlp_run
    text = np.frombuffer(corpus.valid[:2000], np.uint8).astype(np.int64)
    ids = np.concatenate([[BOS], text[:-1]])
    with torch.no_grad():
        float_bpb = bpb_loss(model(torch.from_numpy(ids)[None]), torch.from_numpy(text)[None]).item()
    freqs = intmodel.block(ids[None], intmodel.initial_state(1))[0]
    int_bpb = code_length_bits(freqs, text) / len(text)

    print(f"{kind}: float with QAT {float_bpb:.4f} bpb, integer export {int_bpb:.4f} bpb")
    assert float_bpb < 7.0, "the tiny model did not learn, so the comparison says little"
    assert abs(int_bpb - float_bpb) <= 0.05 * float_bpb


def test_block_equals_steps(mlp_run):
    _, _, intmodel, _ = mlp_run
    ids = np.random.default_rng(5).integers(0, 256, (2, 20))
    state = intmodel.initial_state(2)
    stepped = np.stack([intmodel.step(ids[:, t], state) for t in range(20)], axis=1)
    blocked = intmodel.block(ids, intmodel.initial_state(2))
    assert np.array_equal(stepped, blocked)


def test_export_reloads_with_same_id(mlp_run):
    _, _, intmodel, path = mlp_run
    assert IntModel.load(path).id == intmodel.id


@pytest.mark.parametrize("kind", sorted(MLPS))
def test_forward_equals_step(kind):
    torch.manual_seed(0)
    model = ByteSSM(build_config("tiny", MLPS[kind])).eval()
    model.set_qat(True)
    ids = torch.randint(0, 256, (2, 24))
    with torch.no_grad():
        forward = model(ids)
        state = model.initial_state(2)
        stepped = torch.stack([model.step(ids[:, t], state) for t in range(24)], dim=1)
    assert torch.allclose(forward, stepped, atol=1e-4)


def test_configs_without_mlp_keep_their_json():
    assert "mlp_hidden" not in build_config("small").to_json()
    assert "kan_grid" not in build_config("small").to_json()
    assert '"kan_grid": 4' in build_config("tiny", MLPS["kan"]).to_json()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (["mlp=gated"], "mlp_hidden"),
        (["mlp=kan", "kan_grid=1"], "kan_grid"),
        (["mlp=kan", "kan_grid=64"], "kan_grid"),
        (["mlp=cubic"], "mlp"),
    ],
    ids=["gated-no-hidden", "kan-grid-1", "kan-too-wide", "unknown"],
)
def test_invalid_mlp_configs(overrides, field):
    with pytest.raises(ValueError, match=field):
        build_config("tiny", overrides)


def native_or_skip():
    from nnzip.engine import native_module

    if native_module() is None:
        pytest.skip("nnzip._native is not built")


def test_engines_agree_on_gated_mlp(mlp_run, corpus):
    """nnzip-core runs the gated MLP and writes the reference's bytes; it refuses KAN models."""
    from nnzip.engine import load_engine

    native_or_skip()
    kind, _, intmodel, path = mlp_run
    if kind == "kan":
        with pytest.raises(ModelLoadError, match="mlp 'kan' is not supported by nnzip-core"):
            load_engine(path, "rust")
        return
    data = corpus.valid[:3000]
    python, rust = load_engine(path, "python"), load_engine(path, "rust")
    assert rust.compress(data) == python.compress(data)
    assert rust.decompress(python.compress(data)) == data


def test_auto_engine_runs_every_mlp(mlp_run, corpus):
    from nnzip.engine import load_engine

    native_or_skip()
    kind, _, _, path = mlp_run
    engine = load_engine(path, "auto")
    assert type(engine).__name__ == ("PythonEngine" if kind == "kan" else "RustEngine")
    assert engine.decompress(engine.compress(corpus.valid[:500])) == corpus.valid[:500]
