"""The shipped default model and the golden `.nz` files written with it.

Every later version of nnzip must decode the golden files to the same bytes. Encoding them again
must give the same bytes too, unless the encoder changes on purpose (a new golden file is then
added beside the old ones, which keep decoding).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

import nnzip
from nnzip import codec
from nnzip.config import PRESETS
from nnzip.models import DEFAULT_MODEL, default_model_path, find_model_by_id, load_model

GOLDEN = Path(__file__).resolve().parent / "golden"
CASES = sorted(p.name.removesuffix(".nz") for p in GOLDEN.glob("*.nz"))


@pytest.fixture(scope="module")
def default_model():
    return load_model(None)


def test_default_model_exists():
    assert default_model_path().is_file()
    assert default_model_path().name == DEFAULT_MODEL


def test_default_model_is_small_preset(default_model):
    assert default_model.config == PRESETS["small"]


def test_default_model_found_by_id(default_model):
    assert find_model_by_id(default_model.id[:16]) == default_model_path()


def test_golden_cases_present():
    assert len(CASES) >= 4


@pytest.mark.parametrize("name", CASES)
def test_golden_decodes(name, default_model):
    blob = (GOLDEN / (name + ".nz")).read_bytes()
    assert codec.decompress(blob, default_model) == (GOLDEN / name).read_bytes()


@pytest.mark.parametrize("name", CASES)
def test_golden_encodes_same_bytes(name, default_model):
    data = (GOLDEN / name).read_bytes()
    assert codec.compress(data, default_model) == (GOLDEN / (name + ".nz")).read_bytes()


def test_api_roundtrip_default_model():
    data = b"nnzip compresses bytes with a neural network.\n" * 3
    blob = nnzip.compress(data)
    assert nnzip.decompress(blob) == data


def test_api_text_beats_gzip():
    data = (GOLDEN / "sleepy-hollow-6k.txt").read_bytes()
    assert len(nnzip.compress(data)) < len(gzip.compress(data, 9, mtime=0))


@pytest.mark.parametrize("name", CASES)
def test_golden_rust_engine(name):
    from nnzip.engine import load_engine, native_module

    if native_module() is None:
        pytest.skip("nnzip._native is not built")
    rust = load_engine(default_model_path(), "rust")
    blob = (GOLDEN / (name + ".nz")).read_bytes()
    original = (GOLDEN / name).read_bytes()
    assert rust.decompress(blob) == original
    assert rust.compress(original) == blob
