"""In-memory compression with the shipped models: `nnzip.compress` and `nnzip.decompress`."""

from __future__ import annotations

import os

from nnzip import codec
from nnzip.container import unpack
from nnzip.intmodel import IntModel
from nnzip.models import find_model_by_id, load_model


def compress(data: bytes, model: str | os.PathLike | IntModel | None = None) -> bytes:
    """Compress `data` to a `.nz` container with `model` (default: the shipped default model).

    >>> import nnzip
    >>> nnzip.decompress(nnzip.compress(b"hello, world")) == b"hello, world"
    True
    """
    intmodel = model if isinstance(model, IntModel) else load_model(model)
    return codec.compress(bytes(data), intmodel)


def model_for(blob: bytes, model: str | os.PathLike | IntModel | None) -> IntModel:
    """The model to decode `blob` with: the given one, else the shipped model whose id the
    header names, else the default model (which then fails the id check with a clear error)."""
    if isinstance(model, IntModel):
        return model
    if model is None:
        header, _ = unpack(blob)
        found = find_model_by_id(header.model_id)
        return load_model(found)
    return load_model(model)


def decompress(blob: bytes, model: str | os.PathLike | IntModel | None = None) -> bytes:
    """Return the original bytes of a `.nz` container; raises an NNZipError subclass on bad input."""
    blob = bytes(blob)
    return codec.decompress(blob, model_for(blob, model))
