"""In-memory compression with the shipped models: `nnzip.compress` and `nnzip.decompress`."""

from __future__ import annotations

import os
from pathlib import Path

from nnzip.container import unpack
from nnzip.engine import load_engine
from nnzip.errors import CommandLineError
from nnzip.models import DEFAULT_LEVEL, default_model_path, find_model_by_id, model_for_level, resolve_model

ModelSpec = str | os.PathLike | None


def compress(data: bytes, level: int | None = None, model: ModelSpec = None, engine: str = "auto") -> bytes:
    """Compress `data` to a `.nz` container with the shipped model of `level` (1 fast .. 9 best,
    default 6), or with `model`, a file or shipped model name; give at most one of the two.

    `engine` is "auto" (nnzip-core when built, else the numpy reference), "rust" or "python";
    all of them write the same bytes.

    >>> import nnzip
    >>> nnzip.decompress(nnzip.compress(b"hello, world")) == b"hello, world"
    True
    """
    # memoryview accepts exactly the bytes-like objects; bytes(5) would make five zero bytes.
    return load_engine(compression_model(level, model), engine).compress(memoryview(data).tobytes())


def compression_model(level: int | None, model: ModelSpec) -> Path:
    """Return the model file that a level or a model argument names (default: the default level)."""
    if level is not None and model is not None:
        raise CommandLineError("give a compression level or a model, not both")
    if model is not None:
        return resolve_model(model)
    return model_for_level(DEFAULT_LEVEL if level is None else level)


def model_path_for(blob: bytes, model: ModelSpec) -> Path:
    """Return the model file to decode `blob` with: the given one, else the shipped model whose id the
    header names, else the default model (which then fails the id check with a clear error)."""
    if model is not None:
        return resolve_model(model)
    header, _ = unpack(blob)
    return find_model_by_id(header.model_id) or default_model_path()


def decompress(blob: bytes, model: ModelSpec = None, engine: str = "auto") -> bytes:
    """Return the original bytes of a `.nz` container; raises an NNZipError subclass on bad input."""
    blob = memoryview(blob).tobytes()
    return load_engine(model_path_for(blob, model), engine).decompress(blob)
