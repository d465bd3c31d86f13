"""In-memory compression with the shipped models: `nnzip.compress` and `nnzip.decompress`."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

from nnzip.engine import load_engine
from nnzip.errors import CommandLineError
from nnzip.members import Coder, compress_stream, decompress_stream, read_members
from nnzip.models import DEFAULT_LEVEL, default_model_path, find_model_by_id, model_for_level, resolve_model

ModelSpec = str | os.PathLike | None


def compress(data: bytes, level: int | None = None, model: ModelSpec = None, engine: str = "auto") -> bytes:
    """Compress `data` to `.nz` bytes with the shipped model of `level` (1 fast .. 9 best,
    default 6), or with `model`, a file or shipped model name; give at most one of the two.

    `engine` is "auto" (nnzip-core when built, else the numpy reference), "rust" or "python";
    all of them write the same bytes. Blocks that the model cannot shrink are stored.

    >>> import nnzip
    >>> nnzip.decompress(nnzip.compress(b"hello, world")) == b"hello, world"
    True
    """
    # memoryview accepts exactly the bytes-like objects; bytes(5) would make five zero bytes.
    source = io.BytesIO(memoryview(data).tobytes())
    target = io.BytesIO()
    compress_stream(source, target, load_engine(compression_model(level, model), engine))
    return target.getvalue()


def compression_model(level: int | None, model: ModelSpec) -> Path:
    """Return the model file that a level or a model argument names (default: the default level)."""
    if level is not None and model is not None:
        raise CommandLineError("give a compression level or a model, not both")
    if model is not None:
        return resolve_model(model)
    return model_for_level(DEFAULT_LEVEL if level is None else level)


def coder_lookup(model: ModelSpec = None, engine: str = "auto") -> Callable[[bytes], Coder]:
    """Return a function from a member's model id to the engine that decodes it.

    With `model` given, every model-coded member must name that model (the engine checks the
    id). Otherwise each member's model is found among the shipped ones by id, or the default
    model is used, which then fails the id check with a clear error.
    """
    engines: dict[bytes, Coder] = {}

    def coder_for(model_id: bytes) -> Coder:
        if model_id not in engines:
            path = resolve_model(model) if model is not None else find_model_by_id(model_id) or default_model_path()
            engines[model_id] = load_engine(path, engine)
        return engines[model_id]

    return coder_for


def model_path_for(blob: bytes, model: ModelSpec) -> Path:
    """Return the model file of the first model-coded member of `blob`: the given one, else the
    shipped model whose id the header names, else the default model."""
    if model is not None:
        return resolve_model(model)
    for member in read_members(io.BytesIO(blob)):
        if not member.header.stored:
            return find_model_by_id(member.header.model_id) or default_model_path()
    return default_model_path()


def decompress(blob: bytes, model: ModelSpec = None, engine: str = "auto") -> bytes:
    """Return the original bytes of `.nz` data (one or more members); raises an NNZipError subclass on bad input."""
    target = io.BytesIO()
    decompress_stream(io.BytesIO(memoryview(blob).tobytes()), target, coder_lookup(model, engine))
    return target.getvalue()
