"""The shipped models and the golden `.nz` files written with them: NAME.nz with the default
model, NAME.TAG.nz with another shipped model (tests/golden/make_golden.py lists them).

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
from nnzip.config import PRESETS, build_config
from nnzip.container import unpack
from nnzip.models import DEFAULT_MODEL, FAST_MODEL, INDEX_MODEL, OLD_MODELS, default_model_path, find_model_by_id, load_model

GOLDEN = Path(__file__).resolve().parent / "golden"
# Files of several members (NAME.members.nz) decode through nnzip.decompress; the others are
# single model-coded members, which the codec itself writes and reads.
MEMBER_CASES = sorted(p.name for p in GOLDEN.glob("*.members.nz"))
CASES = sorted(p.name for p in GOLDEN.glob("*.nz") if p.name not in MEMBER_CASES)


def original_of(case: str) -> bytes:
    """The bytes that the golden file `case` holds: the golden original whose name, and a dot,
    is the longest prefix of `case`."""
    originals = [p.name for p in GOLDEN.iterdir() if p.suffix != ".nz" and case.startswith(p.name + ".")]
    return (GOLDEN / max(originals, key=len)).read_bytes()


def model_of(case: str):
    """The shipped model that wrote `case`, found by the id in its header."""
    blob = (GOLDEN / case).read_bytes()
    path = find_model_by_id(unpack(blob)[0].model_id)
    assert path is not None, f"no shipped model has the id of {case}"
    return load_model(path)


@pytest.fixture(scope="module")
def default_model():
    return load_model(None)


def test_default_model_exists():
    assert default_model_path().is_file()
    assert default_model_path().name == DEFAULT_MODEL


def test_default_model_is_small_preset_with_retrieval(default_model):
    assert default_model.config == build_config("small", ["mlp=gated", "mlp_hidden=128", "retrieval=history"])


def test_default_model_found_by_id(default_model):
    assert find_model_by_id(default_model.id[:16]) == default_model_path()


def test_fast_model_is_fast_preset():
    assert load_model(FAST_MODEL).config == PRESETS["fast"]


@pytest.mark.parametrize("engine", ["python", "rust"])
@pytest.mark.parametrize("case", MEMBER_CASES)
def test_golden_members_decode(case, engine):
    from nnzip.engine import native_module

    if engine == "rust" and native_module() is None:
        pytest.skip("nnzip._native is not built")
    blob = (GOLDEN / case).read_bytes()
    assert nnzip.decompress(blob, engine=engine) == original_of(case)


def test_golden_cases_present():
    assert len([case for case in CASES if not case.endswith((".fast.nz", ".fast-v2.nz"))]) >= 4
    assert len([case for case in CASES if case.endswith(".fast.nz")]) >= 2
    assert len([case for case in CASES if case.endswith(".fast-v2.nz")]) >= 2
    assert len([case for case in CASES if case.endswith(".small-v2.nz")]) >= 4
    assert len([case for case in CASES if case.endswith(".small-v3.nz")]) >= 5
    assert len([case for case in CASES if case.endswith(".small-index-v1.nz")]) >= 4
    assert len(MEMBER_CASES) >= 1


@pytest.mark.parametrize("name", OLD_MODELS)
def test_old_models_still_shipped(name):
    assert (default_model_path().parent / name).is_file()


def test_index_model_ships_with_its_index():
    model = load_model(INDEX_MODEL)

    assert model.config == build_config(
        "small",
        ["mlp=gated", "mlp_hidden=128", "retrieval=history+index", "index=enwik8-1m.nzi", f"index_id={model.config.index_id}"],
    )
    assert model.index.id.hex() == model.config.index_id
    assert len(model.index.corpus) == 1 << 20


@pytest.mark.parametrize("case", CASES)
def test_golden_decodes(case):
    blob = (GOLDEN / case).read_bytes()
    assert codec.decompress(blob, model_of(case)) == original_of(case)


@pytest.mark.parametrize("case", CASES)
def test_golden_encodes_same_bytes(case):
    assert codec.compress(original_of(case), model_of(case)) == (GOLDEN / case).read_bytes()


def test_api_roundtrip_default_model():
    data = b"nnzip compresses bytes with a neural network.\n" * 3
    blob = nnzip.compress(data)
    assert nnzip.decompress(blob) == data


def test_api_text_beats_gzip():
    data = (GOLDEN / "sleepy-hollow-6k.txt").read_bytes()
    assert len(nnzip.compress(data)) < len(gzip.compress(data, 9, mtime=0))


@pytest.mark.parametrize("case", CASES)
def test_golden_rust_engine(case):
    from nnzip.engine import load_engine, native_module

    if native_module() is None:
        pytest.skip("nnzip._native is not built")
    blob = (GOLDEN / case).read_bytes()
    rust = load_engine(find_model_by_id(unpack(blob)[0].model_id), "rust")
    original = original_of(case)
    assert rust.decompress(blob) == original
    assert rust.compress(original) == blob


@pytest.mark.parametrize("level", ["3", 1.5, True, 0, 10])
def test_api_rejects_bad_levels(level):
    from nnzip.errors import UsageError

    with pytest.raises(UsageError, match="compression level"):
        nnzip.compress(b"abc", level=level)


def test_api_level_one_uses_fast_model():
    data = (GOLDEN / "sleepy-hollow-6k.txt").read_bytes()
    blob = nnzip.compress(data, level=1)
    assert unpack(blob)[0].model_id == load_model(FAST_MODEL).id[:16]
    assert nnzip.decompress(blob) == data
