"""The Rust engine (nnzip-core through nnzip._native) against the numpy reference.

Both must write the same bytes, decode each other's files and raise the same error types.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from nnzip.engine import load_engine, native_module
from nnzip.errors import ChecksumError, InvalidDataError, ModelLoadError, ModelMismatchError, UsageError

# CI builds the extension, so a missing one there is a failure, not a skip.
if native_module() is None and not os.environ.get("CI"):
    pytest.skip("nnzip._native is not built (pip install -e . builds it)", allow_module_level=True)


def cases(corpus) -> dict[str, bytes]:
    rng = np.random.default_rng(7)
    return {
        "empty": b"",
        "one_byte": b"\x00",
        "all_byte_values": bytes(range(256)),
        "random_3000": rng.integers(0, 256, 3000, dtype=np.uint8).tobytes(),
        "text_9000": corpus.valid[:9000] if len(corpus.valid) >= 9000 else corpus.train[:9000],
    }


@pytest.fixture(scope="module")
def engines(tiny_model_path):
    return load_engine(tiny_model_path, "python"), load_engine(tiny_model_path, "rust")


def test_engine_ids_equal(engines):
    python, rust = engines
    assert python.id == rust.id


def test_rust_writes_reference_bytes(engines, corpus):
    python, rust = engines
    for name, data in cases(corpus).items():
        assert rust.compress(data) == python.compress(data), name


def test_rust_decodes_reference(engines, corpus):
    python, rust = engines
    for name, data in cases(corpus).items():
        assert rust.decompress(python.compress(data)) == data, name


def test_reference_decodes_rust(engines, corpus):
    python, rust = engines
    for name, data in cases(corpus).items():
        assert python.decompress(rust.compress(data)) == data, name


def test_rust_truncated_input(engines):
    _, rust = engines
    blob = rust.compress(b"truncated input test " * 20)
    with pytest.raises(InvalidDataError):
        rust.decompress(blob[:-5])


def test_rust_corrupted_payload(engines):
    _, rust = engines
    blob = bytearray(rust.compress(b"corrupted payload test " * 40))
    blob[-3] ^= 0x10
    with pytest.raises((ChecksumError, InvalidDataError)):
        rust.decompress(bytes(blob))


def test_rust_wrong_model(tiny_model_path, other_model_path):
    blob = load_engine(other_model_path, "rust").compress(b"hello")
    with pytest.raises(ModelMismatchError):
        load_engine(tiny_model_path, "rust").decompress(blob)


def test_missing_model_file(tmp_path):
    with pytest.raises(ModelLoadError):
        load_engine(tmp_path / "missing.safetensors", "rust")


def test_unknown_engine(tiny_model_path):
    with pytest.raises(UsageError, match="unknown engine"):
        load_engine(tiny_model_path, "gpu")


@pytest.mark.parametrize("name", ["python", "rust"])
def test_progress_counts_every_byte(tiny_model_path, corpus, name):
    engine = load_engine(tiny_model_path, name)
    data = corpus.valid[:20_000]
    calls: list[int] = []
    blob = engine.compress(data, calls.append)
    assert sum(calls) == len(data)
    assert len(calls) > 1

    calls.clear()
    assert engine.decompress(blob, calls.append) == data
    assert sum(calls) == len(data)
    assert len(calls) > 1


class Stop(Exception):
    pass


def stop_after_first_call(coded: int) -> None:
    raise Stop(coded)


def test_rust_progress_exception_stops_work(engines, corpus):
    rust = engines[1]
    data = corpus.valid[:20_000]
    with pytest.raises(Stop):
        rust.compress(data, stop_after_first_call)
    blob = rust.compress(data)
    with pytest.raises(Stop):
        rust.decompress(blob, stop_after_first_call)
