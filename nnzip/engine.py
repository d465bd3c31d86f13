"""Coding engines: nnzip-core (Rust, the default when built) and the numpy reference.

Both write the same `.nz` bytes and raise the same `nnzip.errors` exceptions; the reference is
kept for checking and for machines where the extension is not built.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from nnzip import codec
from nnzip.codec import Progress
from nnzip.errors import CommandLineError, ModelLoadError, UsageError
from nnzip.intmodel import IntModel

ENGINES = ("auto", "rust", "python")


def native_module():
    """Return the nnzip._native extension, or None when it is not built."""
    # Candle sizes each matmul's parallelism from RAYON_NUM_THREADS and, when it is unset,
    # reads /proc/cpuinfo on every call, which slows decoding several times over.
    os.environ.setdefault("RAYON_NUM_THREADS", str(os.cpu_count() or 1))
    try:
        from nnzip import _native
    except ImportError:
        return None
    return _native


class PythonEngine:
    """The numpy reference engine (nnzip.intmodel and nnzip.codec)."""

    name = "python"

    def __init__(self, path: Path) -> None:
        self.model = IntModel.load(path)
        self.id = self.model.id

    def compress(self, data: bytes, progress: Progress | None = None) -> bytes:
        return codec.compress(data, self.model, progress)

    def decompress(self, blob: bytes, progress: Progress | None = None) -> bytes:
        return codec.decompress(blob, self.model, progress)


class RustEngine:
    """The nnzip-core engine through the nnzip._native extension."""

    name = "rust"

    def __init__(self, path: Path) -> None:
        native = native_module()
        if native is None:
            raise UsageError("the Rust engine is not built in this install; reinstall nnzip or use --engine python")
        self.model = native.NativeModel(str(path))
        self.id = bytes(self.model.id)

    def compress(self, data: bytes, progress: Progress | None = None) -> bytes:
        # nnzip-core calls `progress` between blocks and stops on its exceptions.
        # NOTE: It codes on its own threads, which cannot handle Python signals, so Ctrl-C and
        # SIGTERM take effect only when the call returns (minutes for a 4 MiB block). Waiting on
        # a helper thread and raising from `progress` stopped it at once, but the process then
        # aborted at exit ("FATAL: exception not rethrown") when it exited right after.
        return self.model.compress(data, progress)

    def decompress(self, blob: bytes, progress: Progress | None = None) -> bytes:
        return self.model.decompress(blob, progress)


@lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int, name: str):
    engine_class = RustEngine if name == "rust" else PythonEngine
    return engine_class(Path(path))


def load_engine(path: Path, engine: str = "auto"):
    """Load the model at `path` into the named engine; "auto" is Rust when it is built."""
    if engine not in ENGINES:
        raise CommandLineError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    try:
        mtime = Path(path).stat().st_mtime_ns
    except OSError as err:
        raise ModelLoadError(f"model file {path} not found") from err
    if engine != "auto":
        return _load(str(path), mtime, engine)
    if native_module() is None:
        return _load(str(path), mtime, "python")
    try:
        return _load(str(path), mtime, "rust")
    except ModelLoadError as err:
        # Models that only the reference runs (KAN MLPs) still work, more slowly.
        if "not supported by nnzip-core" not in str(err):
            raise
        return _load(str(path), mtime, "python")
