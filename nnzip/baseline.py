"""Exact compressed size of a float model: the transformer baseline, or an SSM before export.

The data is cut into the same streams as `nnzip.codec` cuts it. Each position's logits become
the coder's integer frequencies by `nnzip.objective.quantize_probs`, the rule that training
optimizes, and the range coder of `nnzip.coder` codes the bytes. The result is a real `.nz`
container whose size counts every bit, decoded again to check the round trip.

The frequencies come from float arithmetic, so only this process (same machine, same torch)
is sure to decode the container. That suffices for measuring a size. It is also why the
baseline has no `nnzip decompress` support.

A transformer reads at most `context` bytes: windows of `context` inputs that start with BOS,
as in training, advance by half a window, and each position uses the window that gives it
the most history (at least half a window, except at the start of a stream).
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass

import numpy as np
import torch

from nnzip import codec
from nnzip.coder import decode_symbols, encode_symbols
from nnzip.config import BOS
from nnzip.container import MODEL_ID_SIZE, Header, pack
from nnzip.objective import quantize_probs


@dataclass(frozen=True)
class ExactSize:
    original: int
    compressed: int  # bytes of the whole .nz container, header included
    verified: bool  # the container decodes to the original

    @property
    def bpb(self) -> float:
        return 8 * self.compressed / max(1, self.original)


def window_starts(length: int, context: int) -> list[int]:
    """Start of each window over a stream of `length` bytes; the last one ends at the stream's end."""
    if length <= context:
        return [0]
    stride = context // 2
    starts = list(range(0, length - context, stride))
    return starts + [length - context]


@torch.no_grad()
def stream_logits(model: torch.nn.Module, stream: np.ndarray, context: int | None, batch: int = 16) -> torch.Tensor:
    """Logits (len(stream), 256) for each byte of one stream; `context` None runs the whole stream at once."""
    targets = torch.from_numpy(stream.astype(np.int64))
    if context is None or len(stream) <= context:
        inputs = torch.cat([torch.tensor([BOS]), targets[:-1]])
        return model(inputs[None])[0].float()

    starts = window_starts(len(stream), context)
    windows = torch.stack([torch.cat([torch.tensor([BOS]), targets[s : s + context - 1]]) for s in starts])
    logits = torch.cat([model(windows[i : i + batch]) for i in range(0, len(windows), batch)]).float()

    # Each position takes the last window that covers it with at least context // 2 of history,
    # or the first window for the positions before that.
    out = torch.empty(len(stream), logits.shape[-1])
    written = 0
    for index, start in enumerate(starts):
        first = written if index == 0 else max(written, start + context // 2)
        out[first : start + context] = logits[index, first - start :]
        written = start + context
    return out


def frequencies(logits: torch.Tensor) -> np.ndarray:
    """Return the coder's integer frequency rows for `logits` (T, 256)."""
    return quantize_probs(torch.softmax(logits.double(), dim=-1)).round().to(torch.int64).numpy()


def exact_size(model: torch.nn.Module, data: bytes, context: int | None) -> ExactSize:
    """Code `data` with the float model's frequencies into a `.nz` container and decode it again."""
    model.eval()
    view = np.frombuffer(data, np.uint8)
    lengths = codec.stream_lengths(len(view))
    payloads, verified, start = [], True, 0
    for length in lengths:
        stream = view[start : start + length]
        rows = frequencies(stream_logits(model, stream, context))
        payload = encode_symbols(rows, stream.tolist())
        verified &= decode_symbols(payload, rows) == stream.tolist()
        payloads.append(payload)
        start += length

    # A float model has no nnzip model id, so a hash of its class name fills the field. The
    # header has the same size for any model.
    header = Header(
        model_id=hashlib.sha256(type(model).__name__.encode()).digest()[:MODEL_ID_SIZE],
        original_length=len(view),
        crc32=zlib.crc32(data),
        stream_lengths=tuple(lengths),
        stream_sizes=tuple(len(p) for p in payloads),
    )
    return ExactSize(original=len(view), compressed=len(pack(header, payloads)), verified=verified)
