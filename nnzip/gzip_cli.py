"""The gzip-compatible command line: `nnzip [OPTIONS] [FILE...]` and `unnz`.

It follows gzip where gzip, xz and zstd agree. FILE becomes FILE.nz, and the input is removed
once the output is complete, flushed and verified. -c writes to stdout, and no FILE or `-`
reads stdin. -k keeps, -f forces, -t tests, -l lists. Exit codes: 0 success, 1 error, 2 warning.
Data goes to stdout only; messages go to stderr with an `nnzip:` prefix.
"""

from __future__ import annotations

import argparse
import errno
import io
import os
import signal
import stat
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from nnzip.api import coder_lookup, compression_model
from nnzip.bench import speed_text
from nnzip.engine import ENGINES, load_engine
from nnzip.errors import CommandLineError, ModelMismatchError, NNZipError, UsageError
from nnzip.container import FLAG_STORED_ZSTD
from nnzip.members import compress_stream, decompress_stream, read_members
from nnzip.models import find_model_by_id

NZ_SUFFIX = ".nz"
SUCCESS, ERROR, WARNING = 0, 1, 2
INTERRUPTED, BROKEN_PIPE = 130, 141  # 128 + SIGINT, 128 + SIGPIPE, as a shell reports them

DESCRIPTION = """\
Compress or decompress FILEs with a byte-level neural network and a range coder.
Without FILE, or with FILE '-', read stdin and write stdout.
"""

EPILOG = """\
examples:
  nnzip book.txt             replace book.txt with book.txt.nz
  nnzip -k -9 book.txt       keep book.txt, best compression
  nnzip -d book.txt.nz       replace book.txt.nz with book.txt (also: unnz book.txt.nz)
  tar c src | nnzip > src.tar.nz
  nnzip -dc src.tar.nz | tar x
  nnzip -l book.txt.nz       list sizes, ratio and model

other commands: nnzip compress|decompress|bench|train|export|index|fetch-enwik8 --help

exit codes: 0 success, 1 error, 2 warning (such as a file skipped),
130 interrupted, 141 broken pipe.
"""


class ArgumentParser(argparse.ArgumentParser):
    """argparse with errors raised as CommandLineError, so they get the one-line format."""

    def error(self, message: str):
        raise CommandLineError(f"{message} (see 'nnzip --help')")


def build_parser(prog: str, default_mode: str = "compress") -> ArgumentParser:
    parser = ArgumentParser(
        prog=prog, description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )

    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("-d", "--decompress", "--uncompress", dest="mode", action="store_const", const="decompress",
                      help="decompress")
    mode.add_argument("-z", "--compress", dest="mode", action="store_const", const="compress",
                      help="compress (the default)")
    mode.add_argument("-t", "--test", dest="mode", action="store_const", const="test",
                      help="test the integrity of compressed files")
    mode.add_argument("-l", "--list", dest="mode", action="store_const", const="list",
                      help="list original and compressed sizes, ratio and model of compressed files")

    parser.add_argument("-c", "--stdout", "--to-stdout", action="store_true", help="write to stdout, keep the input")
    parser.add_argument("-k", "--keep", action="store_true", help="keep the input file")
    parser.add_argument("-f", "--force", action="store_true",
                        help="overwrite existing output, write compressed data to a terminal")
    parser.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    parser.add_argument("-v", "--verbose", action="store_true", help="print a line per file")

    for level in range(1, 10):
        parser.add_argument(f"-{level}", dest="level", action="store_const", const=level,
                            help=argparse.SUPPRESS if 1 < level < 9 else
                            f"{'fastest (fast model)' if level == 1 else 'best (default model)'}; -1 .. -9, default -6")
    parser.add_argument("--fast", dest="level", action="store_const", const=1, help="same as -1")
    parser.add_argument("--best", dest="level", action="store_const", const=9, help="same as -9")

    parser.add_argument("-m", "--model", help="model file or shipped model name (instead of a level)")
    parser.add_argument("--engine", choices=ENGINES, default="auto", help="coding engine; all write the same bytes")
    parser.add_argument("-V", "--version", action="store_true", help="print the version and exit")
    parser.add_argument("files", nargs="*", metavar="FILE", help="files to process; '-' is stdin")
    parser.set_defaults(mode=default_mode, level=None)
    return parser


@dataclass
class Options:
    mode: str
    to_stdout: bool
    keep: bool
    force: bool
    quiet: bool
    verbose: bool
    level: int | None
    model: str | None
    engine: str


class Skip(Exception):
    """A file left alone with a warning (exit code 2), such as a directory or a wrong suffix."""


def main(argv: list[str], prog: str = "nnzip", default_mode: str = "compress") -> int:
    """Run the gzip-style command line on `argv` and return the exit code.

    `unnz` runs it with `default_mode="decompress"`, so that -t and -l still work there.
    """
    previous = signal.signal(signal.SIGTERM, terminate) if threading.current_thread() is threading.main_thread() else None
    try:
        code = run(argv, prog, default_mode)
        # Flush here, so that a broken pipe is reported as one, not at interpreter exit.
        if sys.stdout is not None:
            sys.stdout.flush()
        return code
    except BrokenPipeError:
        quiet_stdout()
        return BROKEN_PIPE
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def terminate(signum, frame) -> None:
    """Turn SIGTERM into an exception, so that partial outputs are removed as on Ctrl-C."""
    raise KeyboardInterrupt


def run(argv: list[str], prog: str, default_mode: str) -> int:
    try:
        args = build_parser(prog, default_mode).parse_args(argv)
    except CommandLineError as err:
        return report(str(err), ERROR)
    except SystemExit as done:  # --help
        return int(done.code or 0)
    if args.version:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"nnzip {version('nnzip')}")
        except PackageNotFoundError:
            print("nnzip (not installed)")
        return SUCCESS

    options = Options(args.mode, args.stdout, args.keep, args.force, args.quiet, args.verbose,
                      args.level, args.model, args.engine)
    if options.level is not None and options.model is not None:
        return report("give a compression level or --model, not both", ERROR)
    files = args.files or ["-"]
    if files.count("-") > 1:
        return report("stdin ('-') can be read only once", ERROR)

    if options.mode == "list":
        if sys.stdout is None:
            return report("stdout is closed; redirect it to a file or a pipe", ERROR)
        print(f"{'compressed':>12} {'uncompressed':>12}  {'ratio':>6}  {'model':<32}  uncompressed_name")
    status = SUCCESS
    for name in files:
        status = worse(status, run_one(name, options))
    return status


def worse(status: int, new: int) -> int:
    """Combine exit codes: an error outranks a warning, which outranks success."""
    if ERROR in (status, new):
        return ERROR
    return max(status, new)


def run_one(name: str, options: Options) -> int:
    """Process one FILE (or '-') and return its exit code; messages name the file."""
    label = "stdin" if name == "-" else name
    try:
        if options.mode == "list":
            list_file(name, options)
        elif options.mode == "test":
            test_file(name, options)
        elif options.mode == "decompress":
            decompress_file(name, options)
        else:
            compress_file(name, options)
    except Skip as warning:
        if not options.quiet:
            say(f"{label}: {warning}")
        return WARNING
    except BrokenPipeError:
        raise
    except KeyboardInterrupt:
        report("interrupted", INTERRUPTED)
        raise SystemExit(INTERRUPTED)
    except MemoryError:
        return report(f"{label}: out of memory", ERROR)
    except ModelMismatchError as err:
        from nnzip.cli import shipped_model_hint

        hint = shipped_model_hint(Path(name)) if name != "-" and options.model else ""
        return report(f"{label}: {err}{hint}", ERROR)
    except NNZipError as err:
        return report(f"{label}: {err}", ERROR)
    except OSError as err:
        return report(f"{label}: {err.strerror or err}", ERROR)
    return SUCCESS


# Compress and decompress


def compress_file(name: str, options: Options, output: Path | None = None) -> tuple[int, int, float]:
    """Compress FILE (or stdin) to FILE.nz, `output` or stdout; return (original, compressed, seconds)."""
    coder = load_engine(compression_model(options.level, options.model), options.engine)
    with open_input(name, options if output is None else None) as (source, size):
        if name != "-" and not options.to_stdout and output is None and name.endswith(NZ_SUFFIX):
            raise Skip(f"already has the {NZ_SUFFIX} suffix -- unchanged")
        started = time.perf_counter()
        with progress(size, "compress", options) as advance:
            if output is None and (name == "-" or options.to_stdout):
                check_terminal(options)
                original, compressed = compress_stream(source, stdout_binary(), coder, advance)
                stdout_binary().flush()
            else:
                target = output or Path(name + NZ_SUFFIX)
                with atomic_output(Path(name), target, options.force) as sink:
                    original, compressed = compress_stream(source, sink, coder, advance)
                    sink.flush()
                    if will_remove_input(name, options, output):
                        verify(sink, Path(name), options)
                if will_remove_input(name, options, output):
                    Path(name).unlink()
        seconds = time.perf_counter() - started
        note(name, original, compressed, seconds, options, "compressed")
        return original, compressed, seconds


def decompress_file(name: str, options: Options, output: Path | None = None) -> tuple[int, int, float]:
    """Decompress FILE.nz (or stdin) to FILE, `output` or stdout; return (original, compressed, seconds)."""
    # As gzip -d does, FILE stands for FILE.nz when only the latter exists.
    if output is None and name != "-" and not name.endswith(NZ_SUFFIX) and not os.path.lexists(name):
        if os.path.exists(name + NZ_SUFFIX):
            name += NZ_SUFFIX
    with open_input(name, options if output is None else None) as (source, size):
        to_stdout = output is None and (name == "-" or options.to_stdout)
        if name == "-" and sys.stdin.isatty() and not options.force:
            raise UsageError("compressed data not read from a terminal; redirect stdin or use -f")
        if not to_stdout and output is None and not name.endswith(NZ_SUFFIX):
            raise Skip(f"unknown suffix, expected {NZ_SUFFIX} -- ignored")
        coder_for = coder_lookup(options.model, options.engine)
        started = time.perf_counter()
        with progress(size, "decompress", options) as advance:
            counter = CountingReader(source, advance)
            if to_stdout:
                original, compressed = decompress_stream(counter, stdout_binary(), coder_for)
                stdout_binary().flush()
            else:
                target = output or Path(name[: -len(NZ_SUFFIX)])
                with atomic_output(Path(name), target, options.force) as sink:
                    original, compressed = decompress_stream(counter, sink, coder_for)
                if will_remove_input(name, options, output):
                    Path(name).unlink()
        seconds = time.perf_counter() - started
        note(name, original, compressed, seconds, options, "decompressed")
        return original, compressed, seconds


def test_file(name: str, options: Options) -> None:
    with open_input(name) as (source, _):
        decompress_stream(source, None, coder_lookup(options.model, options.engine))
    if options.verbose:
        say(f"{'stdin' if name == '-' else name}: OK")


def list_file(name: str, options: Options) -> None:
    """Print one line per file from the member headers, without decoding."""
    with open_input(name) as (source, _):
        original = compressed = 0
        models: list[str] = []
        for member in read_members(source):
            original += member.header.original_length
            compressed += len(member.data)
            kind = member_kind(member.header)
            if kind not in models:
                models.append(kind)
    ratio = 100.0 * (1 - compressed / original) if original else 0.0
    original_name = "stdin" if name == "-" else name
    if name.endswith(NZ_SUFFIX):
        original_name = name[: -len(NZ_SUFFIX)]
    print(f"{compressed:>12} {original:>12}  {ratio:5.1f}%  {','.join(models):<32}  {original_name}")


def member_kind(header) -> str:
    """Name how a member is coded, for -l: the shipped model's name (else its id), zstd or raw."""
    if header.stored:
        return "zstd" if header.flags == FLAG_STORED_ZSTD else "raw"
    found = find_model_by_id(header.model_id)
    return found.stem if found is not None else header.model_id.hex()


def will_remove_input(name: str, options: Options, output: Path | None) -> bool:
    return name != "-" and not options.keep and not options.to_stdout and output is None


def verify(sink: BinaryIO, original: Path, options: Options) -> None:
    """Decode the finished output and compare it with the input, before the input is removed."""
    sink.seek(0)
    with original.open("rb") as expected:
        compare = CompareWriter(expected)
        decompress_stream(sink, compare, coder_lookup(options.model, options.engine))
        compare.finish()


class CompareWriter:
    """A sink that checks that what is written equals the next bytes of `expected`."""

    def __init__(self, expected: BinaryIO) -> None:
        self.expected = expected
        self.offset = 0

    def write(self, data: bytes) -> int:
        if self.expected.read(len(data)) != data:
            raise NNZipError(f"verification failed near byte {self.offset}: the output does not decode to the input; input kept")
        self.offset += len(data)
        return len(data)

    def finish(self) -> None:
        if self.expected.read(1):
            raise NNZipError(f"verification failed: the output decodes to {self.offset} bytes, fewer than the input; input kept")


class CountingReader(io.RawIOBase):
    """A reader that reports the bytes read through it, for the progress bar of compressed input."""

    def __init__(self, source: BinaryIO, advance) -> None:
        self.source = source
        self.advance = advance

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        if self.advance is not None:
            self.advance(len(data))
        return data


# Files and streams


@contextmanager
def open_input(name: str, options: Options | None = None):
    """Yield (binary reader, size or 0) for FILE or '-', with one-line errors for unusable inputs.

    As gzip does, a symbolic link, or a file with other hard links, is skipped without -f when
    the input would be removed, because removing it would not free the data.
    """
    if name == "-":
        if sys.stdin is None:
            raise UsageError("stdin is closed")
        yield sys.stdin.buffer, 0
        return
    path = Path(name)
    removing = options is not None and options.mode in ("compress", "decompress") and not (
        options.keep or options.to_stdout or options.force
    )
    if removing and path.is_symlink():
        raise Skip("is a symbolic link -- ignored (use -f to follow it, or -k)")
    try:
        info = path.stat()
    except FileNotFoundError:
        raise UsageError("no such file") from None
    except OSError as err:
        raise UsageError(f"cannot read: {err.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise Skip("is a directory -- ignored")
    if not stat.S_ISREG(info.st_mode):
        raise Skip("is not a regular file -- ignored")
    if removing and info.st_nlink > 1:
        raise Skip(f"has {info.st_nlink - 1} other link{'s' if info.st_nlink > 2 else ''} -- ignored (use -f or -k)")
    try:
        handle = path.open("rb")
    except OSError as err:
        raise UsageError(f"cannot read: {err.strerror}") from None
    with handle:
        yield handle, info.st_size


@contextmanager
def atomic_output(source: Path, target: Path, force: bool):
    """Yield a temporary file beside `target`; on success give it the input's mode and times and
    rename it to `target`. On any failure, including Ctrl-C, the temporary file is removed."""
    if target.exists() and source.exists() and target.resolve() == source.resolve():
        raise UsageError(f"output {target} is the input file")
    if target.is_dir():
        raise UsageError(f"output {target} is a directory")
    if target.exists() and not target.is_file():
        raise UsageError(f"output {target} is not a regular file")
    if target.exists() and not force:
        raise UsageError(f"{target} already exists; use -f to overwrite")
    folder = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as err:
        raise UsageError(f"cannot write to {folder}: {err.strerror}") from err
    try:
        with os.fdopen(fd, "w+b") as sink:
            yield sink
            sink.flush()
            os.fsync(sink.fileno())
            copy_metadata(source, sink.fileno())
        os.replace(tmp, target)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        if err.errno == errno.ENOSPC:
            raise UsageError(f"cannot write {target}: no space left on device; nothing was written") from err
        raise UsageError(f"cannot write {target}: {err.strerror or err}") from err
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def copy_metadata(source: Path, fd: int) -> None:
    """Give the output the permission bits and modification time of the input, as gzip does."""
    try:
        info = source.stat()
    except OSError:
        return
    os.fchmod(fd, stat.S_IMODE(info.st_mode))
    os.utime(fd, ns=(info.st_atime_ns, info.st_mtime_ns))


def check_terminal(options: Options) -> None:
    if stdout_binary().isatty() and not options.force:
        raise UsageError("compressed data not written to a terminal; redirect stdout or use -f")


def stdout_binary() -> BinaryIO:
    if sys.stdout is None:
        raise UsageError("stdout is closed; redirect it to a file or a pipe")
    return sys.stdout.buffer


def quiet_stdout() -> None:
    """Point stdout at /dev/null after a broken pipe, so the interpreter's final flush is silent."""
    if sys.stdout is None:
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


# Messages


def say(message: str) -> None:
    print(f"nnzip: {message}", file=sys.stderr, flush=True)


def report(message: str, code: int) -> int:
    say(message if code == WARNING else f"error: {message}")
    return code


def note(name: str, original: int, compressed: int, seconds: float, options: Options, verb: str) -> None:
    if not options.verbose or options.quiet:
        return
    saved = 100.0 * (1 - compressed / original) if original else 0.0
    bpb = 8 * compressed / original if original else 0.0
    speed = speed_text(original / seconds if seconds > 0 else 0.0)
    say(f"{'stdin' if name == '-' else name}: {verb}, {original:,} <-> {compressed:,} bytes, "
        f"{saved:.1f}% saved ({bpb:.3f} bpb), {speed}")


@contextmanager
def progress(total: int, label: str, options: Options):
    """Yield a callback for a progress bar on stderr, or None when stderr is not a terminal."""
    from nnzip.cli import progress_bar

    with progress_bar(total, label, options.quiet) as advance:
        yield advance
