"""Compress and decompress bytes with an integer model, a range coder per stream, and the container.

The input is cut into independent streams (see `stream_lengths`). All streams advance together,
one byte per step, so each model step is one batched call; each stream has its own range coder.
Encoder and decoder call the same `IntModel.step`, so they see the same frequencies.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable

import numpy as np

from nnzip.coder import RangeDecoder, RangeEncoder
from nnzip.config import BOS
from nnzip.container import MODEL_ID_SIZE, Header, model_id_hex, pack, unpack
from nnzip.errors import ChecksumError, InvalidDataError, ModelMismatchError
from nnzip.index import Index
from nnzip.intmodel import IntModel
from nnzip.retrieval import make_retriever, stream_codes

MAX_STREAMS = 64  # streams coded side by side; more streams mean bigger batches per step
MIN_STREAM_LENGTH = 4096  # shorter streams would spend too much of each one warming up the state
MODEL_ID_BYTES = MODEL_ID_SIZE  # the container stores the first 16 bytes of the model's sha256 id
ENCODE_BLOCK = 256  # positions per encoder block; (streams, 256, 256) int64 frequencies stay small

Progress = Callable[[int], None]  # called with the number of bytes coded since the last call


def stream_lengths(total: int) -> list[int]:
    """Split `total` bytes into stream lengths: equal streams of max(MIN_STREAM_LENGTH,
    ceil(total / MAX_STREAMS)) bytes, the last one shorter. This is the encoder's policy; the
    decoder reads the lengths from the container, so the policy can change without a new format.
    """
    if total == 0:
        return []
    length = max(MIN_STREAM_LENGTH, math.ceil(total / MAX_STREAMS))
    full, rest = divmod(total, length)
    return [length] * full + ([rest] if rest else [])


def previous_ids(streams: list[np.ndarray], t: int) -> np.ndarray:
    """Return the model input of step t per stream: BOS at t = 0, else the byte at t - 1."""
    if t == 0:
        return np.full(len(streams), BOS, np.int64)
    return np.array([s[t - 1] if t - 1 < len(s) else 0 for s in streams], np.int64)


def padded_blocks(streams: list[np.ndarray], width: int):
    """Yield (start, inputs, targets) blocks of `width` positions over all streams.

    inputs (b, T) hold BOS then each stream's bytes; positions past a stream's end are padded
    with 0 and their outputs are not used.
    """
    longest = max((len(s) for s in streams), default=0)
    targets = np.zeros((len(streams), longest), np.int64)
    for i, stream in enumerate(streams):
        targets[i, : len(stream)] = stream
    inputs = np.concatenate([np.full((len(streams), 1), BOS, np.int64), targets[:, :-1]], axis=1)
    for start in range(0, longest, width):
        yield start, inputs[:, start : start + width], targets[:, start : start + width]


def compress(data: bytes, model: IntModel, progress: Progress | None = None) -> bytes:
    """Return the `.nz` container of `data` coded with `model`.

    The encoder has every byte in advance, so it runs the model over blocks of ENCODE_BLOCK positions
    (IntModel.block gives exactly the frequencies of single steps) and then codes them.
    """
    view = np.frombuffer(data, dtype=np.uint8)
    lengths = stream_lengths(len(view))
    offsets = np.cumsum([0] + lengths)
    streams = [view[offsets[i] : offsets[i + 1]] for i in range(len(lengths))]
    encoders = [RangeEncoder() for _ in streams]
    state = model.initial_state(len(streams))
    codes = padded_codes(model.config.retrieval, streams, model.index)

    for start, inputs, targets in padded_blocks(streams, ENCODE_BLOCK):
        block_codes = None if codes is None else codes[:, start : start + inputs.shape[1]]
        freqs = model.block(inputs, state, block_codes)  # (b, T, 256)
        freq = np.take_along_axis(freqs, targets[..., None], axis=-1)[..., 0]
        cum = (np.cumsum(freqs, axis=-1) - freqs)
        cum = np.take_along_axis(cum, targets[..., None], axis=-1)[..., 0]
        for i, encoder in enumerate(encoders):
            count = max(0, min(len(streams[i]) - start, inputs.shape[1]))
            for c, f in zip(cum[i, :count].tolist(), freq[i, :count].tolist()):
                encoder.encode(c, f)
        if progress:
            progress(sum(max(0, min(len(s) - start, inputs.shape[1])) for s in streams))

    payloads = [encoder.finish() for encoder in encoders]
    header = Header(
        model_id=model.id[:MODEL_ID_BYTES],
        original_length=len(view),
        crc32=zlib.crc32(data),
        stream_lengths=tuple(lengths),
        stream_sizes=tuple(len(p) for p in payloads),
        index_id=model.index.id if model.index is not None else b"",
    )
    return pack(header, payloads)


def padded_codes(kind: str, streams: list[np.ndarray], index: Index | None = None) -> np.ndarray | None:
    """Return the retriever's codes of all streams, (b, longest) padded with 0, or None without retrieval."""
    if kind == "none":
        return None
    codes = np.zeros((len(streams), max((len(s) for s in streams), default=0)), np.int64)
    for i, stream_code in enumerate(stream_codes(kind, streams, index)):
        codes[i, : len(stream_code)] = stream_code
    return codes


def check_model(header: Header, model: IntModel) -> None:
    expected = model.id[:MODEL_ID_BYTES]
    if header.model_id != expected:
        raise ModelMismatchError(
            f"file was compressed with model {model_id_hex(header.model_id)}, "
            f"but the model used for decoding is {model_id_hex(expected)}; pass --model with the matching model"
        )
    index_id = model.index.id if model.index is not None else b""
    if header.index_id != index_id:
        # The model id covers the index id, so this is a damaged header or a model without its index.
        found = header.index_id.hex() or "none"
        raise ModelMismatchError(
            f"file was compressed with index {found}, but model {model_id_hex(expected)} reads index "
            f"{index_id.hex() or 'none'}; the header is damaged"
        )


def decode_streams(payloads, lengths, model: IntModel, progress: Progress | None) -> list[np.ndarray]:
    """Decode streams that advance together, one model step per position."""
    decoders = [RangeDecoder(p) for p in payloads]
    outputs = [np.zeros(n, np.uint8) for n in lengths]
    state = model.initial_state(len(lengths))
    kind = model.config.retrieval
    retriever = make_retriever(kind, lengths, model.index) if kind != "none" else None

    for t in range(max(lengths, default=0)):
        logits, gate = model.block_logits(previous_ids(outputs, t)[:, None], state)
        if retriever is None:
            freqs = model.frequencies(logits[:, 0], None, None)
        for i, out in enumerate(outputs):
            if t >= len(out):
                continue
            if retriever is None:
                row = freqs[i]
            else:
                # Stream i's code depends on every byte decoded before it, this step's earlier streams too.
                row = model.frequencies(logits[i, 0], gate[i, 0], np.array(retriever.feature(i)))
            out[t] = decode_symbol(decoders[i], row)
            if retriever is not None:
                retriever.push(i, int(out[t]))
        if progress:
            progress(sum(1 for n in lengths if t < n))

    for decoder in decoders:
        decoder.verify_end()
    return outputs


def decode_symbol(decoder: RangeDecoder, freqs: np.ndarray) -> int:
    """Decode one byte with the frequencies (256,) of its position."""
    cums = np.cumsum(freqs)
    target = decoder.decode_target()
    symbol = int(np.searchsorted(cums, target, side="right"))
    freq = int(freqs[symbol])
    decoder.consume(int(cums[symbol]) - freq, freq)
    return symbol


def decompress(blob: bytes, model: IntModel, progress: Progress | None = None) -> bytes:
    """Return the original bytes of a `.nz` container; raise a typed NNZipError on bad input.

    Streams are decoded MAX_STREAMS at a time, so the model state stays bounded whatever
    number of streams a (possibly hostile) header lists.
    """
    header, payloads = unpack(blob)
    check_model(header, model)
    lengths = header.stream_lengths
    parts: list[bytes] = []
    for first in range(0, len(lengths), MAX_STREAMS):
        group = slice(first, first + MAX_STREAMS)
        outputs = decode_streams(payloads[group], lengths[group], model, progress)
        parts.extend(out.tobytes() for out in outputs)

    data = b"".join(parts)
    if zlib.crc32(data) != header.crc32:
        raise ChecksumError(
            f"checksum mismatch: stored CRC32 {header.crc32:08x}, decoded {zlib.crc32(data):08x}; "
            "the file is corrupted"
        )
    if len(data) != header.original_length:
        raise InvalidDataError(f"decoded {len(data)} bytes, but the header declares {header.original_length}")
    return data


def original_length(blob: bytes) -> int:
    """Return the original length that a `.nz` container declares, after validating its header."""
    return unpack(blob)[0].original_length
