"""Coding speed of both engines with each shipped model, measured in one run so that the
Rust / Python ratios compare like with like.

Run: python -m pytest benchmarks/test_engine_speed.py --benchmark-only -s
NNZIP_BENCH_BYTES sets how many validation bytes are coded (default 65536; 400000 is the whole
validation part). RAYON_NUM_THREADS sets the Rust engine's threads (default: all cores).
bytes/s and bpb are in each benchmark's extra_info; the ratios are printed at the end.
"""

from __future__ import annotations

import os

import pytest

from nnzip.data import enwik8_split, find_shared_data
from nnzip.engine import load_engine
from nnzip.models import DEFAULT_MODEL, FAST_MODEL, resolve_model

BENCH_BYTES = int(os.environ.get("NNZIP_BENCH_BYTES", "65536"))
MODELS = [FAST_MODEL, DEFAULT_MODEL]
ENGINES = ["python", "rust"]

# bytes/s by (model, engine, operation), filled as the benchmarks run.
SPEEDS: dict[tuple[str, str, str], float] = {}


@pytest.fixture(scope="module")
def validation_text() -> bytes:
    shared = find_shared_data()
    if shared is None:
        pytest.skip("the shared data folder with enwik8-head is not present")
    return enwik8_split(shared / "enwik8-head", "validation").tobytes()[:BENCH_BYTES]


def engine_for(model: str, engine: str):
    try:
        return load_engine(resolve_model(model), engine)
    except Exception as err:  # the Rust engine is missing when the extension is not built
        pytest.skip(f"{engine} engine with {model}: {err}")


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("model", MODELS)
def test_compress(benchmark, validation_text, model, engine):
    coder = engine_for(model, engine)
    blob = benchmark.pedantic(coder.compress, args=(validation_text,), rounds=1, iterations=1)
    record(benchmark, (model, engine, "compress"), len(validation_text), blob)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("model", MODELS)
def test_decompress(benchmark, validation_text, model, engine):
    coder = engine_for(model, engine)
    blob = coder.compress(validation_text)
    data = benchmark.pedantic(coder.decompress, args=(blob,), rounds=1, iterations=1)
    assert data == validation_text
    record(benchmark, (model, engine, "decompress"), len(validation_text), blob)


def record(benchmark, key: tuple[str, str, str], length: int, blob: bytes) -> None:
    speed = length / benchmark.stats.stats.mean
    SPEEDS[key] = speed
    benchmark.extra_info["bytes_per_s"] = speed
    benchmark.extra_info["bpb"] = 8 * len(blob) / length
    print(f"\n{key[0]} {key[1]} {key[2]} {length} B: {speed:.0f} B/s, {8 * len(blob) / length:.4f} bpb")


def teardown_module() -> None:
    for (model, engine, operation), speed in sorted(SPEEDS.items()):
        reference = SPEEDS.get((model, "python", operation))
        if engine == "rust" and reference:
            print(f"\n{model} {operation}: rust {speed:.0f} B/s = {speed / reference:.1f}x python {reference:.0f} B/s")
