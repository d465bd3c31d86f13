"""Speed of the Python (numpy) reference engine with the shipped default model.

Run: python -m pytest benchmarks/test_reference_speed.py --benchmark-only
NNZIP_BENCH_BYTES sets how many validation bytes are coded (default 65536; 400000 is the whole
validation part). bytes/s is in each benchmark's extra_info and printed at the end.
"""

from __future__ import annotations

import os

import pytest

from nnzip import codec
from nnzip.data import enwik8_split, find_shared_data
from nnzip.models import load_model

BENCH_BYTES = int(os.environ.get("NNZIP_BENCH_BYTES", "65536"))


@pytest.fixture(scope="module")
def validation_text() -> bytes:
    shared = find_shared_data()
    if shared is None:
        pytest.skip("the shared data folder with enwik8-head is not present")
    return enwik8_split(shared / "enwik8-head", "validation").tobytes()[:BENCH_BYTES]


@pytest.fixture(scope="module")
def model():
    return load_model(None)


def test_compress_reference(benchmark, model, validation_text):
    blob = benchmark.pedantic(codec.compress, args=(validation_text, model), rounds=1, iterations=1)
    seconds = benchmark.stats.stats.mean
    benchmark.extra_info["bytes_per_s"] = len(validation_text) / seconds
    benchmark.extra_info["bpb"] = 8 * len(blob) / len(validation_text)
    print(f"\ncompress {len(validation_text)} B: {len(validation_text) / seconds:.0f} B/s, "
          f"{8 * len(blob) / len(validation_text):.4f} bpb")


def test_decompress_reference(benchmark, model, validation_text):
    blob = codec.compress(validation_text, model)
    data = benchmark.pedantic(codec.decompress, args=(blob, model), rounds=1, iterations=1)
    assert data == validation_text
    seconds = benchmark.stats.stats.mean
    benchmark.extra_info["bytes_per_s"] = len(validation_text) / seconds
    print(f"\ndecompress {len(validation_text)} B: {len(validation_text) / seconds:.0f} B/s")
