"""The external index: building, validation, search, the index retriever, and models that read it."""

import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnzip import codec
from nnzip.container import INDEX_VERSION, unpack
from nnzip.errors import ModelLoadError, ModelMismatchError
from nnzip.index import MAX_MATCH, Index, build, index_id
from nnzip.intmodel import IntModel
from nnzip.retrieval import BUCKETS, MIN_INDEX_MATCH, IndexRetriever, index_bucket, stream_codes

FIXTURES = Path(__file__).resolve().parent.parent / "crates" / "nnzip-core" / "tests" / "data"
HEADER = 16


def brute_continuations(corpus: bytes, pattern: bytes) -> dict[int, int]:
    """Count the bytes that follow each occurrence of `pattern` in `corpus`, by scanning."""
    counts: dict[int, int] = {}
    for p in range(len(corpus) - len(pattern)):
        if corpus[p : p + len(pattern)] == pattern:
            counts[corpus[p + len(pattern)]] = counts.get(corpus[p + len(pattern)], 0) + 1
    return counts


def brute_code(corpus: bytes, context: bytes) -> int:
    """The index code of the next byte after `context`, from the rules by exhaustive search."""
    for length in range(min(MAX_MATCH, len(context)), 0, -1):
        counts = brute_continuations(corpus, context[len(context) - length :])
        if counts:
            break
    else:
        return 0
    if length < MIN_INDEX_MATCH:
        return 0
    top = min(counts, key=lambda b: (-counts[b], b))
    return index_bucket(length, sum(counts.values()), counts[top]) * 256 + top


def index_codes(index: Index, data: bytes) -> list[int]:
    retriever = IndexRetriever(index, 1)
    codes = []
    for byte in data:
        codes.append(retriever.feature(0))
        retriever.push(0, byte)
    return codes


@settings(max_examples=60, deadline=None)
@given(
    corpus=st.binary(min_size=1, max_size=300).map(lambda b: bytes(x % 3 + 97 for x in b)),
    text=st.binary(max_size=80).map(lambda b: bytes(x % 3 + 97 for x in b)),
)
def test_index_codes_match_exhaustive_search(corpus, text):
    index = Index(build(corpus))

    codes = index_codes(index, text)

    assert codes == [brute_code(corpus, text[:t]) for t in range(len(text))]


def test_long_repeat_reaches_top_length_class():
    corpus = np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    index = Index(build(corpus))

    codes = index_codes(index, corpus[1000:1100])

    assert codes[MAX_MATCH] >> 8 == BUCKETS + 4 * 3 + 2  # length 32, 1 continuation of 1
    assert all(code & 255 == byte for code, byte in zip(codes[MIN_INDEX_MATCH:], corpus[1000 + MIN_INDEX_MATCH : 1100]))
    assert codes[: MIN_INDEX_MATCH] == [0] * MIN_INDEX_MATCH


def test_pattern_at_corpus_end_has_no_continuation():
    index = Index(build(b"xyzabcd"))

    assert index_codes(index, b"abcd?") == [0] * 5
    assert index.continuations(b"abcd", *index.interval(b"abcd")) == (0, 0, 0)


def test_ties_pick_smallest_byte():
    index = Index(build(b"wxyzB.wxyzA.wxyzB.wxyzA."))

    total, top, count = index.continuations(b"wxyz", *index.interval(b"wxyz"))

    assert (total, top, count) == (4, ord("A"), 2)


def test_large_interval_counted_by_runs():
    corpus = b"".join(b"key" + bytes([65 + i % 5]) for i in range(200))
    index = Index(build(corpus))

    assert index.continuations(b"key", *index.interval(b"key")) == (200, 65, 40)


def test_build_is_deterministic_and_sorted():
    corpus = b"abracadabra" * 20

    blob = build(corpus)

    assert blob == build(corpus)
    assert len(blob) == HEADER + 5 * len(corpus)
    offsets = struct.unpack_from(f"<{len(corpus)}I", blob, HEADER + len(corpus))
    keys = [(corpus[p : p + MAX_MATCH + 1], p) for p in offsets]
    assert keys == sorted(keys)


def corrupt(blob: bytes, offset: int, value: bytes) -> bytes:
    return blob[:offset] + value + blob[offset + len(value) :]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: b"XXXX" + b[4:], "not an nnzip index: magic"),
        (lambda b: corrupt(b, 4, b"\x02"), "index version 2"),
        (lambda b: corrupt(b, 5, b"\x10"), "max match 16"),
        (lambda b: b[:-1], "should have"),
        (lambda b: b[:20], "should have"),
        (lambda b: b[:5], "expected at least 16"),
        (lambda b: corrupt(b, HEADER + 100, struct.pack("<I", 100)), "not a new offset below 100"),
        (lambda b: corrupt(b, HEADER + 100 + 4 * 99, b[HEADER + 100 + 4 * 98 : HEADER + 100 + 4 * 99]), "entry 99 .* not a new offset"),
        (lambda b: corrupt(b, HEADER + 100, b[HEADER + 104 : HEADER + 108] + b[HEADER + 100 : HEADER + 104]), "out of order"),
    ],
)
def test_invalid_index_rejected(change, message):
    blob = build(bytes(np.random.default_rng(2).integers(0, 256, 100, dtype=np.uint8)))

    with pytest.raises(ModelLoadError, match=message):
        Index(change(blob))


def test_empty_corpus_rejected():
    with pytest.raises(ValueError, match="0 bytes"):
        build(b"")


def test_combined_codes_prefer_history():
    corpus = np.random.default_rng(3).integers(0, 256, 3000, dtype=np.uint8)
    index = Index(build(corpus.tobytes()))
    block = np.random.default_rng(4).integers(0, 256, 2000, dtype=np.uint8)
    data = np.concatenate([corpus[:1000], block, block])

    codes = stream_codes("history+index", [data], index)[0]

    buckets = codes >> 8
    # The index contains the first part, and the history contains the repeat.
    assert (buckets[MIN_INDEX_MATCH:1000] >= BUCKETS).all()
    assert (buckets[3000 + 40 :] < BUCKETS).all()
    assert (buckets[3000 + 40 :] > 0).all()


def copy_fixture_model(folder: Path, with_index: bool = True) -> Path:
    model = shutil.copy(FIXTURES / "tiny_index.safetensors", folder / "tiny_index.safetensors")
    if with_index:
        shutil.copy(FIXTURES / "tiny_index.nzi", folder / "tiny_index.nzi")
    return Path(model)


@pytest.mark.parametrize("name", ["text_10k", "repeat_8292"])
def test_reference_matches_index_fixture(name):
    model = IntModel.load(FIXTURES / "tiny_index.safetensors")
    original = (FIXTURES / f"{name}.bin").read_bytes()
    expected = (FIXTURES / f"{name}.index.nz").read_bytes()

    assert codec.compress(original, model) == expected
    assert codec.decompress(expected, model) == original
    header, _ = unpack(expected)
    assert header.version == INDEX_VERSION
    assert header.index_id == model.index.id


def test_index_fixture_codes_text_in_index_cheaply():
    with_index = (FIXTURES / "text_10k.index.nz").stat().st_size
    history_only = (FIXTURES / "text_10k.history.nz").stat().st_size

    assert with_index < history_only / 2


def test_model_without_its_index_fails_at_first_use(tmp_path):
    path = copy_fixture_model(tmp_path, with_index=False)

    model = IntModel.load(path)  # the index loads at first use

    with pytest.raises(ModelLoadError, match=r"needs the index tiny_index.nzi \(id [0-9a-f]{32}\) next to it"):
        codec.compress(b"some bytes", model)


def test_model_with_another_index_fails_at_first_use(tmp_path):
    path = copy_fixture_model(tmp_path, with_index=False)
    (tmp_path / "tiny_index.nzi").write_bytes(build(b"another corpus"))

    with pytest.raises(ModelLoadError, match="but model .* was trained with index id"):
        IntModel.load(path).index


def test_member_naming_another_index_refused():
    model = IntModel.load(FIXTURES / "tiny_index.safetensors")
    blob = (FIXTURES / "text_10k.index.nz").read_bytes()
    header, payloads = unpack(blob)
    from dataclasses import replace

    from nnzip.container import pack

    forged = pack(replace(header, index_id=bytes(16)), [bytes(p) for p in payloads])

    with pytest.raises(ModelMismatchError, match="compressed with index 0{32}"):
        codec.decompress(forged, model)


def test_index_id_is_file_hash_prefix():
    blob = build(b"hello index")

    assert Index(blob).id == index_id(blob)
    assert len(index_id(blob)) == 16


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nnzip", *args], capture_output=True, text=True)


def test_cli_builds_and_describes_index(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(b"the quick brown fox " * 50)
    target = tmp_path / "ref.nzi"

    built = run_cli("index", "build", str(corpus), str(corpus), "-o", str(target))
    info = run_cli("index", "info", str(target))
    again = run_cli("index", "build", str(corpus), "-o", str(target))

    assert built.returncode == 0, built.stderr
    assert Index.load(target).corpus == corpus.read_bytes() * 2
    assert f"2,000 corpus bytes, index id {Index.load(target).id.hex()}" in info.stdout
    assert again.returncode == 1
    assert "already exists; use -f" in again.stderr


def test_cli_rejects_bad_index_inputs(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    bogus = tmp_path / "bogus.nzi"
    bogus.write_bytes(b"not an index at all")

    missing = run_cli("index", "build", str(tmp_path / "nope.txt"), "-o", str(tmp_path / "x.nzi"))
    too_small = run_cli("index", "build", str(empty), "-o", str(tmp_path / "x.nzi"))
    invalid = run_cli("index", "info", str(bogus))

    assert missing.returncode == 1
    assert "no such file" in missing.stderr
    assert too_small.returncode == 1
    assert "1 to" in too_small.stderr
    assert invalid.returncode == 1
    assert "not an nnzip index" in invalid.stderr
    assert not (tmp_path / "x.nzi").exists()


def test_training_with_index_kind_needs_index(tmp_path, tiny_config):
    import dataclasses

    from nnzip.train import train

    cfg = dataclasses.replace(tiny_config, overrides=["retrieval=history+index"], steps=2)

    with pytest.raises(ValueError, match="needs --index FILE.nzi"):
        train(cfg, tmp_path / "run", progress=False)


def test_training_with_index_needs_index_kind(tmp_path, tiny_config):
    import dataclasses

    from nnzip.train import train

    index_path = tmp_path / "ref.nzi"
    index_path.write_bytes(build(b"reference text"))
    cfg = dataclasses.replace(tiny_config, steps=2, index=str(index_path))

    with pytest.raises(ValueError, match="--index needs --set retrieval=history\\+index"):
        train(cfg, tmp_path / "run", progress=False)


def test_cli_rejects_index_build_over_its_input(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(b"some reference text")

    result = run_cli("index", "build", str(corpus), "-o", str(corpus), "-f")

    assert result.returncode == 1
    assert "is an input file" in result.stderr
    assert corpus.read_bytes() == b"some reference text"


def test_trained_index_model_exports_with_its_index(tmp_path, tiny_config, corpus):
    import dataclasses

    from nnzip.engine import load_engine, native_module
    from nnzip.train import train

    index_path = tmp_path / "ref.nzi"
    index_path.write_bytes(build(corpus.train[:20000]))
    cfg = dataclasses.replace(
        tiny_config, overrides=["retrieval=history+index"], steps=40, eval_every=40, index=str(index_path)
    )
    train(cfg, tmp_path / "run", progress=False)
    export = tmp_path / "out" / "indexed.safetensors"
    export.parent.mkdir()

    result = run_cli("export", str(tmp_path / "run"), "-o", str(export))

    assert result.returncode == 0, result.stderr
    assert (export.parent / "ref.nzi").read_bytes() == index_path.read_bytes()
    model = IntModel.load(export)
    data = corpus.train[5000:8000] + corpus.valid[:3000]
    blob = codec.compress(data, model)
    assert codec.decompress(blob, model) == data
    assert unpack(blob)[0].index_id == model.index.id
    if native_module() is not None:
        rust = load_engine(export, "rust")
        assert rust.compress(data) == blob
        assert rust.decompress(blob) == data
