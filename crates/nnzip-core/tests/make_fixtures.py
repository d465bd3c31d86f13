"""Regenerate the cross-implementation fixtures in tests/data with the Python reference.

Run from the repository root with the shared data folder beside it:

    PYTHONPATH=. python crates/nnzip-core/tests/make_fixtures.py [index]

With the argument `index` it writes only the index fixtures.

It trains the `tiny` preset for a few steps on one thread, exports it to the integer model
`tiny.safetensors`, and writes each input `NAME.bin` with its `.nz` compressed by
nnzip.codec. It does the same with a gated MLP in each layer (`tiny_gated.safetensors` and
`text_10k.gated.nz`) and with own-history retrieval (`tiny_history.safetensors` and the
`.history.nz` files), and with own-history plus index retrieval (`tiny_index.safetensors`,
its index `tiny_index.nzi` and the `.index.nz` files). `step_freqs.json` contains the frequencies of the first steps on the text input,
which locate a mismatch more precisely than a `.nz` file does. Torch with one thread and the
same seed gives the same float model on the same machine; the exported integers may differ
on another CPU, but the fixtures stay consistent with each other because all of them are
written from the export that this run produces. The script sorts the keys of the export's
safetensors header, so that a rerun on the same machine writes the same bytes.
"""

from __future__ import annotations

import json
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np

from nnzip import codec
from nnzip.data import find_shared_data
from nnzip.export import export_model
from nnzip.intmodel import IntModel
from nnzip.train import TrainConfig, load_model, train

DATA = Path(__file__).resolve().parent / "data"
TRAIN_BYTES = 200_000  # the first bytes of enwik8-head, enough for 300 steps of 8 x 64 bytes
TRAIN_STEPS = 300
TEXT_START, TEXT_LENGTH = 20_000, 10_000  # a slice of the book text after the Gutenberg header
RANDOM_SEED, RANDOM_LENGTH = 2024, 5000  # two streams: 4096 bytes and 904 bytes
STEP_FREQS_POSITIONS = 8
GATED = ["mlp=gated", "mlp_hidden=24"]
HISTORY = ["retrieval=history"]
INDEX = ["retrieval=history+index"]
INDEX_CORPUS = 40_000  # the first bytes of pg41, which include the text_10k slice


def fixture_inputs(shared: Path) -> dict[str, bytes]:
    text = (shared / "gutenberg" / "pg41.txt").read_bytes()[TEXT_START : TEXT_START + TEXT_LENGTH]
    random = np.random.default_rng(RANDOM_SEED).integers(0, 256, RANDOM_LENGTH, dtype=np.uint8).tobytes()
    return {
        "empty": b"",
        "one_byte": b"A",
        "all_bytes": bytes(range(256)),
        "random_5000": random,
        "text_10k": text,
    }


def train_tiny_model(shared: Path, workdir: Path, name: str = "tiny", overrides: list[str] | None = None,
                     index: Path | None = None) -> Path:
    corpus = (shared / "enwik8-head").read_bytes()[:TRAIN_BYTES]
    corpus_path = workdir / "train.txt"
    corpus_path.write_bytes(corpus)
    config = TrainConfig(
        preset="tiny",
        overrides=overrides or [],
        steps=TRAIN_STEPS,
        batch_size=8,
        seq_len=64,
        eval_every=TRAIN_STEPS,
        qat_start=0.5,
        data=[str(corpus_path)],
        valid="",
        seed=0,
        threads=1,
        index=str(index or ""),
    )
    run_dir = workdir / f"run-{name}"
    train(config, run_dir, progress=False)
    model, _ = load_model(run_dir)
    path = DATA / f"{name}.safetensors"
    export_model(model, np.frombuffer(corpus, np.uint8), path)
    sort_safetensors_header(path)
    return path


def sort_safetensors_header(path: Path) -> None:
    """Rewrite the JSON header of a safetensors file with sorted keys.

    The safetensors writer stores the metadata from a hash map, so its key order, and with it
    the file's bytes, change from run to run. The tensors, their offsets and the model id do
    not change, and neither does any reader's result.
    """
    raw = path.read_bytes()
    header_length = struct.unpack_from("<Q", raw, 0)[0]
    header = json.loads(raw[8 : 8 + header_length])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    # The format pads the header with spaces so that the tensor data starts 8-byte aligned.
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + header_length :])


def write_members_fixture() -> None:
    """Write members.nz, a file of three members (model-coded, stored raw, stored zstd), and members.bin."""
    import zstandard

    from nnzip.container import FLAG_STORED_RAW, FLAG_STORED_ZSTD, pack_stored

    text, random = (DATA / "text_10k.bin").read_bytes(), (DATA / "random_5000.bin").read_bytes()
    repeated = b"abc" * 3000
    zstd_frame = zstandard.ZstdCompressor(level=19).compress(repeated)
    blob = (DATA / "text_10k.nz").read_bytes() + pack_stored(random, FLAG_STORED_RAW)
    blob += pack_stored(repeated, FLAG_STORED_ZSTD, zstd_frame)
    (DATA / "members.bin").write_bytes(text + random + repeated)
    (DATA / "members.nz").write_bytes(blob)
    print(f"members: {len(text + random + repeated)} -> {len(blob)} bytes")


def repeat_input() -> bytes:
    """Return 4096 random bytes twice and 100 more: three streams, the second one a copy of
    the first at the same positions, so the retriever predicts it from the same step."""
    block = np.random.default_rng(RANDOM_SEED + 1).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    return block + block + block[:100]


def write_history_fixtures(shared: Path, workdir: Path) -> None:
    """Write tiny_history.safetensors (own-history retrieval) and the `.history.nz` files of
    text_10k and repeat_8292."""
    path = train_tiny_model(shared, workdir, "tiny_history", HISTORY)
    model = IntModel.load(path)
    repeat = repeat_input()
    (DATA / "repeat_8292.bin").write_bytes(repeat)
    for name, data in (("text_10k", fixture_inputs(shared)["text_10k"]), ("repeat_8292", repeat)):
        blob = codec.compress(data, model)
        assert codec.decompress(blob, model) == data
        (DATA / f"{name}.history.nz").write_bytes(blob)
        print(f"model {path.name}: {name} {len(data)} -> {len(blob)} bytes")


def write_index_fixtures(shared: Path, workdir: Path) -> None:
    """Write tiny_index.nzi (over the start of pg41), tiny_index.safetensors (own history plus
    that index) and the `.index.nz` files of text_10k and repeat_8292."""
    from nnzip.index import build

    index_path = DATA / "tiny_index.nzi"
    index_path.write_bytes(build((shared / "gutenberg" / "pg41.txt").read_bytes()[:INDEX_CORPUS]))
    path = train_tiny_model(shared, workdir, "tiny_index", INDEX, index_path)
    model = IntModel.load(path)
    for name, data in (("text_10k", fixture_inputs(shared)["text_10k"]), ("repeat_8292", repeat_input())):
        blob = codec.compress(data, model)
        assert codec.decompress(blob, model) == data
        (DATA / f"{name}.index.nz").write_bytes(blob)
        print(f"model {path.name}: {name} {len(data)} -> {len(blob)} bytes")


def step_frequencies(model: IntModel, data: bytes, positions: int) -> list[list[int]]:
    """Frequencies of the first `positions` steps of one stream that starts with BOS."""
    state = model.initial_state(1)
    ids = np.array([[256] + list(data[: positions - 1])], np.int64)
    return model.block(ids, state)[0].tolist()


def main() -> int:
    shared = find_shared_data()
    if shared is None:
        print("make_fixtures: error: the shared data folder was not found beside the checkout", file=sys.stderr)
        return 1
    DATA.mkdir(parents=True, exist_ok=True)
    if sys.argv[1:] == ["index"]:
        with tempfile.TemporaryDirectory() as workdir:
            write_index_fixtures(shared, Path(workdir))
        return 0
    with tempfile.TemporaryDirectory() as workdir:
        model_path = train_tiny_model(shared, Path(workdir))
        gated_path = train_tiny_model(shared, Path(workdir), "tiny_gated", GATED)
        write_history_fixtures(shared, Path(workdir))
        write_index_fixtures(shared, Path(workdir))
    model = IntModel.load(model_path)

    inputs = fixture_inputs(shared)
    for name, data in inputs.items():
        blob = codec.compress(data, model)
        assert codec.decompress(blob, model) == data
        (DATA / f"{name}.bin").write_bytes(data)
        (DATA / f"{name}.nz").write_bytes(blob)
        print(f"{name}: {len(data)} -> {len(blob)} bytes")

    freqs = step_frequencies(model, inputs["text_10k"], STEP_FREQS_POSITIONS)
    (DATA / "step_freqs.json").write_text(json.dumps({"input": "text_10k", "freqs": freqs}) + "\n")
    print(f"model {model_path.name}: id {model.id.hex()}, {model_path.stat().st_size} bytes")

    write_members_fixture()

    gated = IntModel.load(gated_path)
    blob = codec.compress(inputs["text_10k"], gated)
    assert codec.decompress(blob, gated) == inputs["text_10k"]
    (DATA / "text_10k.gated.nz").write_bytes(blob)
    print(f"model {gated_path.name}: text_10k -> {len(blob)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
