import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

from nnzip.coder import TOTAL
from nnzip.config import BOS
from nnzip.errors import ModelLoadError
from nnzip.fixedpoint import isqrt, requantize
from nnzip.intmodel import IntModel, frequencies_from_logits, model_id
from nnzip.objective import bpb_loss

HELD_OUT_BYTES = 2048


def random_inputs(seed: int, streams: int, steps: int) -> np.ndarray:
    """Input ids (steps, streams): BOS first, then random bytes."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 256, size=(steps, streams), dtype=np.int64)
    ids[0] = BOS
    return ids


def run_steps(model: IntModel, ids: np.ndarray) -> np.ndarray:
    """Frequencies (steps, streams, 256) from feeding ids (steps, streams) one step at a time."""
    state = model.initial_state(ids.shape[1])
    return np.stack([model.step(row, state) for row in ids])


def code_length_bits(freqs: np.ndarray, symbols: np.ndarray) -> float:
    """Ideal code length of `symbols` under integer frequency tables, in bits."""
    chosen = np.take_along_axis(freqs, symbols[:, None], axis=-1)[:, 0]
    return float(-np.log2(chosen / TOTAL).sum())


def test_step_frequency_invariants(tiny_model):
    freqs = run_steps(tiny_model, random_inputs(seed=0, streams=5, steps=100))
    assert np.issubdtype(freqs.dtype, np.integer)
    assert freqs.min() >= 1
    assert np.all(freqs.sum(axis=-1) == TOTAL)


def test_step_batch_independence(tiny_model):
    ids = random_inputs(seed=1, streams=4, steps=40)
    together = run_steps(tiny_model, ids)
    for stream in range(ids.shape[1]):
        alone = run_steps(tiny_model, ids[:, stream : stream + 1])
        assert np.array_equal(together[:, stream], alone[:, 0]), f"stream {stream} differs"


def test_step_deterministic(tiny_model):
    ids = random_inputs(seed=2, streams=3, steps=50)
    assert np.array_equal(run_steps(tiny_model, ids), run_steps(tiny_model, ids))


def test_block_equals_steps(tiny_model):
    ids = random_inputs(seed=3, streams=3, steps=30)
    stepped = run_steps(tiny_model, ids)

    state = tiny_model.initial_state(ids.shape[1])
    blocks = [tiny_model.block(ids[start:end].T, state) for start, end in [(0, 1), (1, 8), (8, 30)]]
    blocked = np.concatenate(blocks, axis=1).transpose(1, 0, 2)

    assert np.array_equal(blocked, stepped)


def test_exported_bpb_close_to_float(tiny_model, tiny_float_model, corpus):
    text = np.frombuffer(corpus.valid[:HELD_OUT_BYTES], np.uint8).astype(np.int64)
    ids = np.concatenate([[BOS], text[:-1]])

    with torch.no_grad():
        logits = tiny_float_model(torch.from_numpy(ids)[None])
        float_bpb = bpb_loss(logits, torch.from_numpy(text)[None]).item()
    freqs = run_steps(tiny_model, ids[:, None])[:, 0]
    int_bpb = code_length_bits(freqs, text) / len(text)

    print(f"held-out bpb: float with QAT {float_bpb:.4f}, integer export {int_bpb:.4f}")
    assert float_bpb < 7.0, "the tiny model did not learn, so the comparison says little"
    assert abs(int_bpb - float_bpb) <= 0.05 * float_bpb


def isqrt_cases() -> list[int]:
    values = {0, 1, 2, 3, 4, 5, 2**62 - 1, 2**62 - 2, 2**53, 2**53 + 1, 2**53 - 1}
    for root in [2, 3, 1000, 2**26 - 1, 2**26, 2**26 + 1, 3037000499, 2**31 - 1]:
        values.update({root * root - 1, root * root, root * root + 1})
    rng = np.random.default_rng(0)
    values.update(int(v) for v in rng.integers(0, 2**62, size=1000))
    return sorted(v for v in values if v < 2**62)


def test_isqrt_exact():
    values = isqrt_cases()
    roots = isqrt(np.array(values, dtype=np.int64))
    wrong = [(v, int(r)) for v, r in zip(values, roots) if int(r) != math.isqrt(v)]
    assert wrong == []


def exact_requantize(value: int, multiplier: int, shift: int) -> int:
    """floor(value * multiplier / 2**shift + 1/2) in exact rational arithmetic."""
    return math.floor(Fraction(value * multiplier, 2**shift) + Fraction(1, 2))


def requantize_cases() -> tuple[list[int], list[int], list[int]]:
    values, multipliers, shifts = [], [], []
    edges = [0, 1, -1, 2, -2, 3, -3, 2**38 - 1, -(2**38 - 1), 12345, -12345]
    for value in edges:
        for multiplier in [0, 1, 3, 2**23, 2**24 - 1]:
            for shift in [1, 2, 7, 24, 40, 62]:
                values.append(value)
                multipliers.append(multiplier)
                shifts.append(shift)
    rng = np.random.default_rng(1)
    values += [int(v) for v in rng.integers(-(2**38) + 1, 2**38, size=2000)]
    multipliers += [int(m) for m in rng.integers(0, 2**24, size=2000)]
    shifts += [int(s) for s in rng.integers(1, 63, size=2000)]
    return values, multipliers, shifts


def test_requantize_exact():
    values, multipliers, shifts = requantize_cases()
    got = requantize(np.array(values, np.int64), np.array(multipliers, np.int64), np.array(shifts, np.int64))
    wrong = [
        (v, m, s, int(g))
        for v, m, s, g in zip(values, multipliers, shifts, got)
        if int(g) != exact_requantize(v, m, s)
    ]
    assert wrong == []


def test_requantize_ties_round_up():
    # 5/2 and -5/2 lie halfway between integers: half up gives 3 and -2.
    got = requantize(np.array([5, -5], np.int64), np.array([1, 1], np.int64), np.array([1, 1], np.int64))
    assert got.tolist() == [3, -2]


def check_frequencies(freqs: np.ndarray) -> None:
    assert np.issubdtype(freqs.dtype, np.integer)
    assert freqs.min() >= 1
    assert np.all(freqs.sum(axis=-1) == TOTAL)


def test_frequencies_random_logits(tiny_model):
    rng = np.random.default_rng(2)
    logits = rng.integers(-5000, 5000, size=(64, 256), dtype=np.int64)
    check_frequencies(frequencies_from_logits(logits, tiny_model.t["head.exp_table"]))


def test_frequencies_equal_logits(tiny_model):
    logits = np.full((3, 256), 17, np.int64)
    freqs = frequencies_from_logits(logits, tiny_model.t["head.exp_table"])
    check_frequencies(freqs)
    assert np.all(freqs == TOTAL // 256)


def test_frequencies_huge_spread(tiny_model):
    logits = np.zeros((2, 256), np.int64)
    logits[0, 7] = 2**40
    logits[1] = -(2**40)
    logits[1, 200] = 2**40
    freqs = frequencies_from_logits(logits, tiny_model.t["head.exp_table"])
    check_frequencies(freqs)
    assert freqs[0, 7] == TOTAL - 255
    assert freqs[1, 200] == TOTAL - 255


def test_frequencies_tie_remainder_to_first(tiny_model):
    logits = np.zeros((1, 256), np.int64)
    logits[0, [9, 30]] = 1000
    freqs = frequencies_from_logits(logits, tiny_model.t["head.exp_table"])
    check_frequencies(freqs)
    assert freqs[0, 9] >= freqs[0, 30]


def test_model_id_one_weight(tiny_model):
    tensors = {name: value.copy() for name, value in tiny_model.tensors.items()}
    tensors["head.weight"][0, 0] += 1
    assert model_id(tiny_model.config.to_json(), tensors) != tiny_model.id


def test_model_id_config(tiny_model):
    config_json = tiny_model.config.to_json().replace('"chunk_size": 16', '"chunk_size": 32')
    assert config_json != tiny_model.config.to_json()
    assert model_id(config_json, tiny_model.tensors) != tiny_model.id


def test_model_id_stable(tiny_model, tiny_model_path):
    assert IntModel.load(tiny_model_path).id == tiny_model.id


def test_model_id_other_export(tiny_model, other_model):
    assert other_model.id != tiny_model.id


def test_load_training_checkpoint(tiny_run):
    with pytest.raises(ModelLoadError, match="not an nnzip integer export"):
        IntModel.load(tiny_run / "model.safetensors")


def test_load_garbage(tmp_path):
    path = tmp_path / "garbage.safetensors"
    path.write_bytes(np.random.default_rng(3).bytes(1000))
    with pytest.raises(ModelLoadError, match="not a safetensors export .*written by nnzip export"):
        IntModel.load(path)


def test_load_text(tmp_path):
    path = tmp_path / "notes.safetensors"
    path.write_text("this is not a model\n")
    with pytest.raises(ModelLoadError):
        IntModel.load(path)


def test_load_truncated_export(tmp_path, tiny_model_path):
    path = tmp_path / "truncated.safetensors"
    path.write_bytes(tiny_model_path.read_bytes()[:-100])
    with pytest.raises(ModelLoadError):
        IntModel.load(path)


def test_load_missing(tmp_path):
    with pytest.raises(ModelLoadError, match="not found"):
        IntModel.load(tmp_path / "missing.safetensors")


def test_load_newer_version(tmp_path):
    path = tmp_path / "future.safetensors"
    save_file({"embedding": np.zeros((2, 2), np.int32)}, str(path), metadata={"format": "nnzip-int", "version": "99"})
    with pytest.raises(ModelLoadError, match="version 99"):
        IntModel.load(path)


def test_load_invalid_config(tmp_path):
    path = tmp_path / "bad-config.safetensors"
    metadata = {"format": "nnzip-int", "version": "1", "config": '{"d_model": 0}'}
    save_file({"embedding": np.zeros((2, 2), np.int32)}, str(path), metadata=metadata)
    with pytest.raises(ModelLoadError, match="invalid config"):
        IntModel.load(path)


def test_load_missing_tensor(tmp_path, tiny_model_path):
    from safetensors.numpy import load_file, safe_open

    with safe_open(str(tiny_model_path), framework="numpy") as handle:
        metadata = handle.metadata()
    tensors = load_file(str(tiny_model_path))
    del tensors["head.exp_table"]
    path = tmp_path / "missing.safetensors"
    save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(ModelLoadError, match="lacks tensors"):
        IntModel.load(path)


def test_load_wrong_shape(tmp_path, tiny_model_path):
    from safetensors.numpy import load_file, safe_open

    with safe_open(str(tiny_model_path), framework="numpy") as handle:
        metadata = handle.metadata()
    tensors = load_file(str(tiny_model_path))
    tensors["head.exp_table"] = tensors["head.exp_table"][:10]
    path = tmp_path / "short.safetensors"
    save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(ModelLoadError, match="head.exp_table"):
        IntModel.load(path)
