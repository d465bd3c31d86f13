"""Own-history retrieval: feature codes in coding order, the retrieval head, and exact coding."""

from pathlib import Path

import numpy as np
import pytest
import torch

from nnzip import codec
from nnzip.config import build_config
from nnzip.data import sample_windows
from nnzip.intmodel import IntModel
from nnzip.retrieval import ORDER, bucket_of, corpus_codes, stream_codes
from nnzip.train import build_model

FIXTURES = Path(__file__).resolve().parent.parent / "crates" / "nnzip-core" / "tests" / "data"


def random_bytes(length: int, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, length, dtype=np.uint8)


def predicted(codes: np.ndarray, data: np.ndarray) -> np.ndarray:
    """Return which positions have a match whose predicted byte is the actual byte."""
    return (codes >= 256) & ((codes & 255) == data)


def test_aligned_repeat_predicted_from_same_step():
    block = random_bytes(4096)
    codes = stream_codes("history", [block, block.copy()])

    assert predicted(codes[1], block).sum() >= 4096 - ORDER - 1
    assert not codes[0].any()


def test_repeat_beyond_window_predicted():
    block = random_bytes(65536)
    data = np.concatenate([block, block])

    codes = corpus_codes("history", data, 4 << 20)

    assert predicted(codes[65536:], block).mean() > 0.99
    assert not codes[:65536].any()


def test_random_bytes_get_no_matches():
    codes = corpus_codes("history", random_bytes(20000), 4 << 20)

    assert (codes == 0).mean() > 0.99


def test_buckets_grow_with_match_length():
    assert bucket_of(0) == 0
    assert bucket_of(ORDER) == 3
    assert bucket_of(1000) == 10
    assert bucket_of(65535) == 15


def test_stub_retriever_gives_no_codes():
    block = random_bytes(5000)

    assert not corpus_codes("none", np.concatenate([block, block]), 4 << 20).any()


def test_windows_carry_codes_of_their_targets():
    data = random_bytes(1000)
    codes = np.arange(1000, dtype=np.int64)

    inputs, targets, window_codes = sample_windows(data, 4, 32, np.random.default_rng(0), codes)

    assert np.array_equal(data[window_codes], targets)
    assert inputs.shape == window_codes.shape


def test_gate_boosts_only_predicted_logit():
    model = build_model(build_config("tiny", ["retrieval=history"])).eval()
    ids = torch.randint(0, 256, (1, 8))
    codes = torch.zeros(1, 8, dtype=torch.int64)
    codes[0, 5] = 12 * 256 + 65

    with torch.no_grad():
        plain, boosted = model(ids), model(ids, codes)

    difference = boosted - plain
    assert difference[0, 5, 65] > 0
    difference[0, 5, 65] = 0
    assert torch.count_nonzero(difference) == 0


def test_unknown_retrieval_rejected():
    with pytest.raises(ValueError, match="unknown retrieval 'suffix'"):
        build_config("tiny", ["retrieval=suffix"])
    with pytest.raises(ValueError, match="arch 'ssm' only"):
        build_config("tiny", ["retrieval=history"], arch="transformer")


@pytest.mark.parametrize("name", ["text_10k", "repeat_8292"])
def test_reference_matches_rust_fixture(name):
    model = IntModel.load(FIXTURES / "tiny_history.safetensors")
    original = (FIXTURES / f"{name}.bin").read_bytes()
    expected = (FIXTURES / f"{name}.history.nz").read_bytes()

    assert codec.compress(original, model) == expected
    assert codec.decompress(expected, model) == original


def test_trained_export_round_trips_in_both_engines(tmp_path, tiny_config, corpus):
    import dataclasses

    from nnzip.engine import load_engine, native_module
    from nnzip.export import export_model
    from nnzip.train import load_model, train

    cfg = dataclasses.replace(tiny_config, overrides=["retrieval=history"], steps=40, eval_every=40)
    train(cfg, tmp_path / "run", progress=False)
    model, _ = load_model(tmp_path / "run")
    export = tmp_path / "history.safetensors"
    reference = export_model(model, np.frombuffer(corpus.train, np.uint8), export)
    data = corpus.valid[:3000] * 3

    blob = codec.compress(data, reference)

    assert reference.config.retrieval == "history"
    assert codec.decompress(blob, reference) == data
    if native_module() is not None:
        rust = load_engine(export, "rust")
        assert rust.compress(data) == blob
        assert rust.decompress(blob) == data
