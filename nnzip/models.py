"""Shipped models: their folder, the default model, and loading by name, path or id."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from nnzip.errors import CommandLineError, ModelLoadError
from nnzip.intmodel import IntModel

DEFAULT_MODEL = "nnzip-small-v3.safetensors"
FAST_MODEL = "nnzip-fast-v2.safetensors"
# The default recipe with own-history retrieval plus the enwik8-1m.nzi index beside it; no level
# picks it, `--model nnzip-small-index-v1` does.
INDEX_MODEL = "nnzip-small-index-v1.safetensors"
# Shipped only to decode files written with them: the earlier models of levels 1 and 4-9.
OLD_MODELS = ("nnzip-fast-v1.safetensors", "nnzip-small-v1.safetensors", "nnzip-small-v2.safetensors")
MODEL_SUFFIX = ".safetensors"

# Levels as gzip numbers them: 1 is fastest, 9 compresses best. Levels up to FAST_LEVELS use
# the fast model and the others the default model, which is also the best one shipped.
MIN_LEVEL, MAX_LEVEL, DEFAULT_LEVEL = 1, 9, 6
FAST_LEVELS = 3


def model_dir() -> Path:
    """Return the folder of shipped models: $NNZIP_MODEL_DIR, else the one inside the installed
    package (wheels), else `models/` of the source checkout."""
    override = os.environ.get("NNZIP_MODEL_DIR")
    if override:
        return Path(override)
    package = Path(__file__).resolve().parent
    for candidate in (package / "_models", package.parent / "models"):
        if candidate.is_dir():
            return candidate
    return package.parent / "models"


def default_model_path() -> Path:
    """Path of the default model shipped with nnzip."""
    return model_dir() / DEFAULT_MODEL


def model_for_level(level: int) -> Path:
    """Path of the shipped model that compression level `level` (1..9) uses."""
    if not isinstance(level, int) or isinstance(level, bool):
        raise CommandLineError(f"compression level {level!r} is not an integer; expected {MIN_LEVEL} to {MAX_LEVEL}")
    if not MIN_LEVEL <= level <= MAX_LEVEL:
        raise CommandLineError(f"compression level {level} is out of range; expected {MIN_LEVEL} to {MAX_LEVEL}")
    return model_dir() / (FAST_MODEL if level <= FAST_LEVELS else DEFAULT_MODEL)


def resolve_model(spec: str | os.PathLike | None) -> Path:
    """Turn a model argument into a file path: None is the default model, an existing path is
    taken as is, anything else is looked up by name in the model folder."""
    if spec is None:
        return default_model_path()
    path = Path(spec)
    if path.is_file():
        return path
    for name in (str(spec), str(spec) + MODEL_SUFFIX):
        candidate = model_dir() / name
        if candidate.is_file():
            return candidate
    raise ModelLoadError(f"model {spec} not found as a file or in {model_dir()}")


@lru_cache(maxsize=8)
def _load_cached(path: str, mtime_ns: int) -> IntModel:
    return IntModel.load(path)


def load_model(spec: str | os.PathLike | None = None) -> IntModel:
    """Load (and cache) the integer model named by `spec`; see `resolve_model`."""
    path = resolve_model(spec)
    try:
        mtime = path.stat().st_mtime_ns
    except OSError as err:
        raise ModelLoadError(f"model file {path} not found") from err
    return _load_cached(str(path), mtime)


def find_model_by_id(model_id: bytes) -> Path | None:
    """Return the model in the model folder whose id starts with `model_id`, if any."""
    folder = model_dir()
    if not folder.is_dir():
        return None
    for path in sorted(folder.glob("*" + MODEL_SUFFIX)):
        try:
            if load_model(path).id.startswith(model_id):
                return path
        except ModelLoadError:
            continue
    return None
