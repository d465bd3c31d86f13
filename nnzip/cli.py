"""The `nnzip` subcommands (compress, decompress, bench, train, export, index) and the entry points.

`nnzip FILE...` without a subcommand is the gzip-style command line of `nnzip.gzip_cli`.
Data goes to files or stdout; every message goes to stderr with an `nnzip:` prefix. Exit
codes: 0 success, 1 error (an invalid command line too), 2 warning, 130 interrupted.
"""

from __future__ import annotations

import os
import sys
import tempfile
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

from nnzip.bench import speed_text
from nnzip.members import read_members
from nnzip.models import find_model_by_id
from nnzip.errors import CommandLineError, InvalidDataError, ModelMismatchError, NNZipError, UsageError
from nnzip.engine import ENGINES

NZ_SUFFIX = ".nz"

app = typer.Typer(
    help=(
        "Lossless compression with a byte-level neural network and a range coder.\n\n"
        "Examples:\n\n"
        "  nnzip compress book.txt              # writes book.txt.nz, keeps book.txt\n\n"
        "  nnzip decompress book.txt.nz -o copy.txt\n\n"
        "  nnzip train --steps 1500 --out runs/small\n\n"
        "gzip-style use without a subcommand: nnzip --help.\n\n"
        "Exit codes: 0 success, 1 error, 2 warning, 130 interrupted."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def show_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"nnzip {version('nnzip')}")
        except PackageNotFoundError:
            print("nnzip (not installed)")
        raise typer.Exit()


@app.callback()
def root(
    version_flag: Annotated[
        bool, typer.Option("--version", callback=show_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Lossless compression with a byte-level neural network and a range coder."""
stderr = Console(stderr=True, highlight=False)


def say(message: str, quiet: bool = False) -> None:
    if not quiet:
        stderr.print(f"nnzip: {message}", markup=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> None:
    stderr.print(f"nnzip: error: {message}", markup=False, soft_wrap=True)
    raise typer.Exit(code)


def read_input(path: Path) -> bytes:
    """Read a file that check_input has accepted."""
    try:
        return path.read_bytes()
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err.strerror}") from err


def check_input(path: Path) -> None:
    if not path.exists():
        raise UsageError(f"{path}: no such file")
    if path.is_dir():
        raise UsageError(f"{path} is a directory, expected a file")


def check_output(source: Path, target: Path, force: bool) -> None:
    if target.exists() and source.exists() and target.resolve() == source.resolve():
        raise UsageError(f"output {target} is the input file; choose another output with -o")
    if target.is_dir():
        raise UsageError(f"output {target} is a directory, expected a file path")
    # Replacing by rename would turn a device, pipe or socket into a regular file, even with -f.
    if target.exists() and not target.is_file():
        raise UsageError(f"output {target} is not a regular file; choose a file path with -o")
    if target.exists() and not force:
        raise UsageError(f"{target} already exists; use -f to overwrite")


def write_atomically(target: Path, data: bytes) -> None:
    """Write to a temporary file beside `target`, then rename, so a failure leaves no partial output."""
    folder = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as err:
        raise UsageError(f"cannot write to {folder}: {err.strerror}") from err
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            # mkstemp creates the file readable by its owner only; give it the usual mode.
            os.fchmod(handle.fileno(), 0o666 & ~current_umask())
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise UsageError(f"cannot write {target}: {err.strerror or err}") from err
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def progress_bar(total: int, label: str, quiet: bool):
    """Yield a callback that advances a progress bar on stderr; silent unless stderr is a terminal."""
    if quiet or not sys.stderr.isatty() or total == 0:
        yield None
        return
    columns = ["{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=stderr, transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def summary(name: str, original: int, compressed: int, seconds: float, decompressed: bool = False) -> str:
    """Format one line: input -> output size, bpb, and speed in original bytes per second."""
    bpb = 8 * compressed / original if original else 0.0
    speed = speed_text(original / seconds if seconds > 0 else 0.0)
    sizes = f"{compressed:,} -> {original:,}" if decompressed else f"{original:,} -> {compressed:,}"
    return f"{name}: {sizes} bytes ({bpb:.3f} bpb) in {seconds:.1f} s, {speed}"


ModelOption = Annotated[
    Optional[str],
    typer.Option("--model", "-m", help="Model file or shipped model name. Default: the shipped default model."),
]
EngineOption = Annotated[
    str,
    typer.Option(help=f"Coding engine: {', '.join(ENGINES)}. auto is rust (nnzip-core) when built; all write the same bytes."),
]
ForceOption = Annotated[bool, typer.Option("--force", "-f", help="Overwrite an existing output file.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Print errors only.")]


@app.command()
def compress(
    file: Annotated[Path, typer.Argument(help="File to compress.")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Output path. Default: FILE.nz.")] = None,
    level: Annotated[
        Optional[int],
        typer.Option(
            "--level",
            metavar="1..9",
            help="1 is fastest, 9 compresses best; -1 to -9 also work. Default: 6. Levels 1-3 use the fast model, 4-9 the default model.",
        ),
    ] = None,
    model: ModelOption = None,
    engine: EngineOption = "auto",
    force: ForceOption = False,
    quiet: QuietOption = False,
) -> None:
    """Compress FILE to FILE.nz (or -o OUT) with the neural model.

    Examples: nnzip compress book.txt -o book.nz; nnzip compress -1 big.log (fastest)
    """
    from nnzip import gzip_cli

    with errors_reported():
        check_input(file)
        target = output or file.with_name(file.name + NZ_SUFFIX)
        check_output(file, target, force)
        options = gzip_cli.Options("compress", False, True, force, quiet, False, level, model, engine)
        original, compressed, seconds = gzip_cli.compress_file(str(file), options, output=target)
        say(summary(str(file), original, compressed, seconds), quiet)


@app.command()
def decompress(
    file: Annotated[Path, typer.Argument(help="The .nz file to decompress.")],
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Output path. Default: FILE without .nz.")
    ] = None,
    model: Annotated[
        Optional[str],
        typer.Option("--model", "-m", help="Model file or shipped model name. Default: the shipped model the header names."),
    ] = None,
    engine: EngineOption = "auto",
    force: ForceOption = False,
    quiet: QuietOption = False,
) -> None:
    """Decompress FILE.nz to FILE (or -o OUT); the model named in the header is found by id.

    Example: nnzip decompress book.nz -o book.txt
    """
    from nnzip import gzip_cli

    with errors_reported():
        check_input(file)
        if output is None:
            if file.suffix != NZ_SUFFIX:
                raise UsageError(f"cannot derive an output name: {file} has no {NZ_SUFFIX} suffix; name the output with -o")
            output = file.with_suffix("")
        check_output(file, output, force)
        options = gzip_cli.Options("decompress", False, True, force, quiet, False, None, model, engine)
        with named(file, hint=model is not None):
            original, compressed, seconds = gzip_cli.decompress_file(str(file), options, output=output)
        say(summary(str(file), original, compressed, seconds, decompressed=True), quiet)


@contextmanager
def named(path: Path, hint: bool = True):
    """Prefix the message of an invalid-data or model-mismatch error with the file's name and,
    with `hint`, the shipped model that the file names."""
    try:
        yield
    except ModelMismatchError as err:
        raise ModelMismatchError(f"{path}: {err}{shipped_model_hint(path) if hint else ''}") from err
    except InvalidDataError as err:
        raise type(err)(f"{path}: {err}") from err


def shipped_model_hint(path: Path) -> str:
    """Name the shipped model that wrote `path`, if there is one, for a model-mismatch message."""
    try:
        with path.open("rb") as handle:
            header = next(member.header for member in read_members(handle) if not member.header.stored)
    except (OSError, NNZipError, StopIteration):
        return ""
    found = find_model_by_id(header.model_id)
    return f" (the file names the shipped model {found.stem}; leave out --model to use it)" if found else ""


@contextmanager
def errors_reported():
    """Turn nnzip errors into one-line messages with exit code 1 (2 for an invalid command line),
    Ctrl-C into exit code 130."""
    try:
        yield
    except CommandLineError as err:
        fail(str(err), 1)
    except NNZipError as err:
        fail(str(err))
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except MemoryError:
        fail("out of memory")


@app.command()
def train(
    out: Annotated[Path, typer.Option("--out", help="Run directory for checkpoints (model.safetensors, config.json).")],
    preset: Annotated[str, typer.Option(help="Model preset: fast, small, base or tiny.")] = "small",
    arch: Annotated[
        str, typer.Option(help="ssm (nnzip's model) or transformer (the preset's same-size float baseline).")
    ] = "ssm",
    set_: Annotated[
        Optional[list[str]], typer.Option("--set", help="Model config override key=value, e.g. --set d_model=128.")
    ] = None,
    data: Annotated[
        Optional[list[str]],
        typer.Option(help="Training data: enwik8-train, a slice such as 'enwik8-train[1048576:]', gutenberg, a file or a folder. Repeatable."),
    ] = None,
    valid: Annotated[str, typer.Option(help="Validation data: enwik8-valid, a file, or '' for none.")] = "enwik8-valid",
    steps: Annotated[int, typer.Option(help="Optimizer steps in total.")] = 1500,
    batch_size: Annotated[int, typer.Option(help="Windows per step and process.")] = 32,
    seq_len: Annotated[int, typer.Option(help="Bytes per training window.")] = 256,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 2e-3,
    qat_start: Annotated[float, typer.Option(help="Fraction of steps after which quantization-aware training starts.")] = 0.6,
    eval_every: Annotated[int, typer.Option(help="Steps between validation runs and checkpoints.")] = 250,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from its last checkpoint.")] = False,
    index: Annotated[
        Optional[Path],
        typer.Option(help="Index file (nnzip index build) for --set retrieval=history+index."),
    ] = None,
    quiet: QuietOption = False,
) -> None:
    """Train a model; run under torchrun for several processes.

    Examples:

      nnzip train --out runs/small --steps 1800

      nnzip train --out runs/wide --set d_model=256 --data enwik8-train --data gutenberg

      nnzip train --out runs/small-transformer --arch transformer --steps 1800

      nnzip train --out runs/indexed --set retrieval=history+index --index ref.nzi --data train.txt

      torchrun --nproc_per_node 2 -m nnzip train --out runs/ddp
    """
    with errors_reported():
        try:
            from nnzip.train import TrainConfig
            from nnzip.train import train as run_training
        except ImportError as err:
            raise UsageError(f"training needs torch: pip install 'nnzip[train]' ({err})") from err
        cfg = TrainConfig(
            preset=preset, arch=arch, overrides=list(set_ or []), data=list(data or ["enwik8-train"]), valid=valid,
            steps=steps, batch_size=batch_size, seq_len=seq_len, lr=lr, qat_start=qat_start,
            eval_every=eval_every, seed=seed, index=str(index or ""),
        )
        try:
            result = run_training(cfg, out, resume=resume, progress=not quiet)
        except ValueError as err:
            raise UsageError(str(err)) from err
        say(f"trained {cfg.steps} steps, validation {result['valid_bpb']:.4f} bpb, checkpoint in {out}", quiet)


@app.command()
def export(
    run: Annotated[Path, typer.Argument(help="Training run directory.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Export file (.safetensors).")],
    force: ForceOption = False,
) -> None:
    """Export a trained run to the integer model that compress and decompress use.

    Example: nnzip export runs/small -o models/my-model.safetensors
    """
    with errors_reported():
        if output.exists() and not force:
            raise UsageError(f"{output} already exists; use -f to overwrite")
        from nnzip.data import load_corpus
        from nnzip.export import export_model
        from nnzip.train import load_model as load_run

        model, meta = load_run(run)
        if model.config.arch != "ssm":
            raise UsageError(
                f"{run} is a {model.config.arch} run, a float baseline without an integer export; "
                "measure it with benchmarks/phase1.py"
            )
        calibration = load_corpus(meta["train"]["data"][0])
        copy_index(model.config, meta["train"].get("index", ""), output)
        intmodel = export_model(model, calibration, output)
        say(f"exported {run} to {output}, model id {intmodel.id[:16].hex()}")


def copy_index(config, source: str, output: Path) -> None:
    """Put the index that a model with retrieval "history+index" reads next to its export."""
    if not config.index:
        return
    from nnzip.index import Index

    target = output.parent / config.index
    if target.is_file() and Index.load(target).id.hex() == config.index_id:
        return
    if not source or not Path(source).is_file():
        raise UsageError(f"the run reads index {config.index} (id {config.index_id}); copy it to {target} first")
    index = Index.load(source)
    if index.id.hex() != config.index_id:
        raise UsageError(f"{source} has index id {index.id.hex()}, but the run was trained with {config.index_id}")
    if target.exists():
        raise UsageError(f"{target} exists and is another index; move it away so that the export can put its index there")
    write_atomically(target, Path(source).read_bytes())


index_app = typer.Typer(
    help="Build and inspect external indexes for retrieval models.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(index_app, name="index")


@index_app.command("build")
def index_build(
    corpus: Annotated[list[Path], typer.Argument(help="Reference corpus files, concatenated in the order given.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Index file to write (.nzi).")],
    force: ForceOption = False,
    quiet: QuietOption = False,
) -> None:
    """Build the suffix array index of a reference corpus.

    A model trained with --index reads the index, which must be in the model file's folder.
    Every .nz file coded with that model names the index by id.

    Example: nnzip index build reference.txt -o models/reference.nzi
    """
    with errors_reported():
        from nnzip.index import MAX_CORPUS, build, index_id

        for path in corpus:
            check_input(path)
            if output.exists() and output.resolve() == path.resolve():
                raise UsageError(f"output {output} is an input file; choose another output with -o")
        if output.exists() and not force:
            raise UsageError(f"{output} already exists; use -f to overwrite")
        data = b"".join(read_input(path) for path in corpus)
        if not 1 <= len(data) <= MAX_CORPUS:
            raise UsageError(f"invalid corpus size {len(data):,} bytes; an index takes 1 to {MAX_CORPUS:,} bytes")
        with console_status(f"sorting {len(data):,} suffixes", quiet):
            blob = build(data)
        write_atomically(output, blob)
        say(f"wrote {output}: {len(data):,} corpus bytes, {len(blob):,} bytes, index id {index_id(blob).hex()}", quiet)


@index_app.command("info")
def index_info(index: Annotated[Path, typer.Argument(help="Index file (.nzi).")]) -> None:
    """Print the corpus size and id of an index.

    Example: nnzip index info models/reference.nzi
    """
    with errors_reported():
        from nnzip.index import Index

        check_input(index)
        loaded = Index.load(index)
        print(f"{index}: {len(loaded.corpus):,} corpus bytes, index id {loaded.id.hex()}")


@contextmanager
def console_status(message: str, quiet: bool):
    """Show a spinner with `message` on stderr while the block runs, when stderr is a terminal."""
    if quiet or not sys.stderr.isatty():
        yield
        return
    with Console(stderr=True).status(message):
        yield


@app.command()
def bench(
    files: Annotated[list[Path], typer.Argument(help="Files to compress with each compressor.")],
    vs: Annotated[
        Optional[list[str]],
        typer.Option(
            help="Compressors beside nnzip, comma-separated: nnzip-1, gzip, bzip2, xz, zstd, zstd-ultra, brotli; "
            "or an external command, NAME='COMPRESS {in} {out} :: DECOMPRESS {in} {out}'. Repeatable. Default: gzip."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON instead of a table.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print the rows as CSV instead of a table.")] = False,
    plot_path: Annotated[
        Optional[Path], typer.Option("--plot", help="Write a PNG of bpb against speed (needs matplotlib).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite an existing --plot file.")] = False,
) -> None:
    """Compare nnzip with other compressors: size, bpb, speed, peak memory, verified round trip.

    Each compressor runs in its own worker process. Exit code 1 if any round trip fails.

    Examples:

      nnzip bench book.txt

      nnzip bench book.txt logs.tar --vs gzip,xz,zstd --json

      nnzip bench book.txt --vs gzip --vs 'lz4=lz4 -9 -f {in} {out} :: lz4 -d -f {in} {out}' --csv
    """
    from nnzip import bench as benchmark

    with errors_reported():
        if as_json and as_csv:
            raise CommandLineError("choose one of --json and --csv")
        for path in files:
            check_input(path)
        tools = benchmark.unique_tools(vs or ["gzip"])
        if plot_path is not None:
            benchmark.check_plot_path(plot_path, files, force)
        rows = []
        for path in files:
            for tool in tools:
                name = tool if isinstance(tool, str) else tool.name
                with stderr.status(f"{name} on {path}") if sys.stderr.isatty() else nullcontext():
                    rows.append(benchmark.measure(tool, path))
        if as_json:
            print(benchmark.rows_json(rows))
        elif as_csv:
            print(benchmark.rows_csv(rows), end="")
        else:
            Console().print(benchmark.rich_table(rows))
        if plot_path is not None:
            benchmark.plot(rows, plot_path)
        failed = [f"{row.compressor} on {row.file}" for row in rows if row.round_trip.startswith("FAILED")]
        if failed:
            raise NNZipError(f"failed: {', '.join(failed)}; see the round trip column")


@app.command("fetch-enwik8")
def fetch_enwik8_command(
    dest: Annotated[Path, typer.Option("--dest", help="Folder for enwik8.zip and enwik8.")] = Path("data"),
) -> None:
    """Download enwik8 from its public home and verify its checksum.

    Example: nnzip fetch-enwik8 --dest data
    """
    with errors_reported():
        from nnzip.datasets import fetch_enwik8

        say(f"enwik8 is at {fetch_enwik8(dest)}")


LEVEL_FLAGS = {f"-{level}" for level in range(1, 10)}


def expand_level_flags(args: list[str]) -> list[str]:
    """Rewrite gzip-style `-1` .. `-9` of `compress` as `--level N`, up to a `--`, since click
    has no digit flags. A value after --level stays as it is."""
    if "compress" not in args[:1]:
        return args
    expanded: list[str] = []
    for index, arg in enumerate(args):
        if arg == "--":
            return expanded + args[index:]
        after_level = index > 0 and args[index - 1] == "--level"
        if arg in LEVEL_FLAGS and not after_level:
            expanded.extend(["--level", arg[1:]])
        elif arg[:1] == "-" and arg[1:].isdigit() and not after_level:
            raise CommandLineError(f"unknown option {arg}; compression levels are -1 to -9")
        else:
            expanded.append(arg)
    return expanded


SUBCOMMANDS = ("compress", "decompress", "bench", "train", "export", "index", "fetch-enwik8")


def main() -> None:
    """Run `nnzip`: a subcommand through typer, anything else as the gzip-style command line."""
    argv = sys.argv[1:]
    if not argv or argv[0] not in SUBCOMMANDS:
        from nnzip import gzip_cli

        sys.exit(gzip_cli.main(argv))
    run_subcommand(argv)


def unnz_main() -> None:
    """Run `unnz`, which is `nnzip -d`."""
    from nnzip import gzip_cli

    sys.exit(gzip_cli.main(sys.argv[1:], prog="unnz", default_mode="decompress"))


def run_subcommand(argv: list[str]) -> None:
    """Run a typer subcommand; an invalid command line prints one `nnzip: error:` line and exits with 1."""
    try:
        args = expand_level_flags(argv)
    except CommandLineError as err:
        fail_now(str(err), 1)
    try:
        code = app(args=args, prog_name="nnzip", standalone_mode=False)
    except Exception as err:  # typer bundles its own click, so its exception classes are matched by shape
        kind = type(err).__name__
        context = getattr(err, "ctx", None)
        if kind == "NoArgsIsHelpError" and context is not None:
            print(context.get_help(), file=sys.stderr)
            sys.exit(1)
        if kind == "Abort":
            fail_now("interrupted", 130)
        if not hasattr(err, "format_message") or not hasattr(err, "exit_code"):
            raise
        hint = f" (see '{context.command_path} --help')" if context is not None and err.exit_code == 2 else ""
        # click uses 2 for an invalid command line; gzip, and so nnzip, use 1 for every error.
        fail_now(f"{err.format_message()}{hint}", 1 if err.exit_code == 2 else err.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


def fail_now(message: str, code: int) -> None:
    stderr.print(f"nnzip: error: {message}", markup=False, soft_wrap=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
