"""nnzip: lossless compression with a byte-level state-space model and a range coder."""

from nnzip.errors import (
    ChecksumError,
    InvalidDataError,
    ModelLoadError,
    ModelMismatchError,
    NNZipError,
    UnsupportedVersionError,
    UsageError,
)

__version__ = "0.1.0"

from nnzip.api import compress, decompress  # noqa: E402  (after the error classes it uses)
from nnzip.nzfile import NNZipFile, open  # noqa: E402, A004

__all__ = [
    "ChecksumError",
    "InvalidDataError",
    "ModelLoadError",
    "ModelMismatchError",
    "NNZipError",
    "NNZipFile",
    "UnsupportedVersionError",
    "UsageError",
    "__version__",
    "compress",
    "decompress",
    "open",
]
