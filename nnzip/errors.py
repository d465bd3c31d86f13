"""Typed errors shared by the container, the coder, the models and the command line.

Each class is one failure kind, so callers can tell corrupt input from a wrong model or a
failed read. Messages are one line, name the file or field, and show expected against got.
"""


class NNZipError(Exception):
    """Base class of every error nnzip raises on purpose."""


class InvalidDataError(NNZipError):
    """Compressed input that is not a valid `.nz` container: bad magic, truncation, corruption."""


class UnsupportedVersionError(InvalidDataError):
    """A `.nz` container written by a newer format version than this reader supports."""


class ChecksumError(InvalidDataError):
    """Decoded bytes whose CRC32 differs from the one stored in the header."""


class ModelMismatchError(NNZipError):
    """A `.nz` file written with a different model than the one given for decoding."""


class ModelLoadError(NNZipError):
    """A model file that is missing, unreadable or not a valid nnzip export."""


class UsageError(NNZipError):
    """A request that cannot be carried out as given, such as an output path equal to the input."""


class CommandLineError(UsageError, ValueError):
    """An invalid option value or combination, such as a compression level of 12 or an unknown mode.

    It is a ValueError too, as the standard library raises for such arguments.
    """
