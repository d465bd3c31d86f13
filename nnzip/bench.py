"""`nnzip bench`: nnzip against the classic compressors on the user's own files.

Every row is one compressor on one file: sizes, bpb, compress and decompress speed, peak
memory, and whether the round trip gave the original bytes back. Each row is measured in a
fresh worker process (`python -m nnzip.bench WORKER-ARGS`), so that its peak RSS is its own
and a crash in one compressor cannot take the others down.

The classic compressors run through their Python modules (zlib, bz2, lzma, zstandard, brotli),
so the numbers do not depend on the tools on PATH. Peak RSS is the worker's high-water mark,
which includes the Python interpreter and nnzip's modules (about 50 MiB, most of a gzip row),
or, for an external command, the larger of its two processes' peaks.
"""

from __future__ import annotations

import bz2
import csv
import dataclasses
import gzip
import io
import json
import lzma
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from nnzip.errors import CommandLineError, UsageError

Codec = tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]
WORKER_TIMEOUT_S = 3600


def zstd_codec(level: int, long_window: bool = False) -> Codec:
    import zstandard

    if long_window:
        params = zstandard.ZstdCompressionParameters.from_level(level, enable_ldm=True, window_log=27)
        compressor = zstandard.ZstdCompressor(compression_params=params)
    else:
        compressor = zstandard.ZstdCompressor(level=level)
    decompressor = zstandard.ZstdDecompressor()

    def decompress(blob: bytes) -> bytes:
        return decompressor.stream_reader(io.BytesIO(blob)).read()

    return compressor.compress, decompress


def brotli_codec() -> Codec:
    try:
        import brotli
    except ImportError as err:
        raise UsageError("brotli is not installed: pip install brotli") from err
    return (lambda data: brotli.compress(data, quality=11)), brotli.decompress


def nnzip_codec(level: int) -> Codec:
    import nnzip

    return (lambda data: nnzip.compress(data, level=level)), nnzip.decompress


# Built-in compressors by name; each factory builds the codec inside the worker.
BUILTIN: dict[str, Callable[[], Codec]] = {
    "nnzip": lambda: nnzip_codec(6),
    "nnzip-1": lambda: nnzip_codec(1),
    "gzip": lambda: (lambda data: gzip.compress(data, 9, mtime=0), gzip.decompress),
    "bzip2": lambda: (lambda data: bz2.compress(data, 9), bz2.decompress),
    "xz": lambda: (lambda data: lzma.compress(data, preset=9 | lzma.PRESET_EXTREME), lzma.decompress),
    "zstd": lambda: zstd_codec(19),
    "zstd-ultra": lambda: zstd_codec(22, long_window=True),
    "brotli": brotli_codec,
}
# Settings of each built-in, for the table and the report.
SETTINGS = {
    "nnzip": "-6",
    "nnzip-1": "-1",
    "gzip": "-9",
    "bzip2": "-9",
    "xz": "-9e",
    "zstd": "-19",
    "zstd-ultra": "--ultra -22 --long",
    "brotli": "-q 11",
}


@dataclass
class Row:
    file: str
    compressor: str
    settings: str
    original_bytes: int
    compressed_bytes: int | None = None
    bpb: float | None = None
    compress_bytes_per_s: float | None = None
    decompress_bytes_per_s: float | None = None
    peak_rss_mib: float | None = None
    round_trip: str = "not run"  # "ok", "not verified", or "FAILED: why"


@dataclass(frozen=True)
class External:
    """A user's compressor: command templates with {in} and {out}; decompress may be empty."""

    name: str
    compress: str
    decompress: str = ""


def parse_vs(spec: str) -> list[str | External]:
    """Parse one `--vs` value: comma-separated built-in names, or one `NAME=CMD [:: DECOMPRESS-CMD]` template."""
    if "=" in spec.split(",")[0]:
        return [parse_template(spec)]
    names = [name.strip() for name in spec.split(",") if name.strip()]
    for name in names:
        if name not in BUILTIN:
            raise CommandLineError(
                f"unknown compressor {name!r}; expected one of {', '.join(BUILTIN)}, or NAME='CMD {{in}} {{out}}'"
            )
    return names


def parse_template(spec: str) -> External:
    """Check an external compressor's templates before any work starts."""
    name, _, commands = spec.partition("=")
    compress, _, decompress = (part.strip() for part in commands.partition("::"))
    name = name.strip()
    if not name or name in BUILTIN:
        raise CommandLineError(f"external compressor name {name!r} is empty or a built-in name; choose another")
    for template in filter(None, (compress, decompress)):
        if "{in}" not in template or "{out}" not in template:
            raise CommandLineError(f"command template {template!r} needs both {{in}} and {{out}}")
        try:
            shlex.split(template)
        except ValueError as err:
            raise CommandLineError(f"command template {template!r} cannot be parsed: {err}") from err
    return External(name, compress, decompress)


def unique_tools(specs: list[str]) -> list[str | External]:
    """nnzip first, then each compressor of the `--vs` values once, in order."""
    tools: list[str | External] = ["nnzip"]
    for spec in specs:
        for tool in parse_vs(spec):
            if tool not in tools:
                tools.append(tool)
    return tools


def check_plot_path(path: Path, inputs: list[Path], force: bool) -> None:
    """Refuse a plot path that would replace an input, a folder or an existing file without -f."""
    if path.suffix.lower() != ".png":
        raise CommandLineError(f"plot {path} must end in .png")
    if path.is_dir():
        raise UsageError(f"plot {path} is a directory, expected a file path")
    if not path.parent.is_dir():
        raise UsageError(f"cannot write plot {path}: folder {path.parent} not found")
    if path.exists():
        if any(path.resolve() == source.resolve() for source in inputs):
            raise UsageError(f"plot {path} is one of the input files; choose another path")
        if not force:
            raise UsageError(f"{path} already exists; use -f to overwrite")


def measure_builtin(name: str, data: bytes) -> dict:
    compress, decompress = BUILTIN[name]()
    # One call on empty input loads what the codec loads once (nnzip's model), outside the timing.
    decompress(compress(b""))
    started = time.perf_counter()
    blob = compress(data)
    compress_s = time.perf_counter() - started
    started = time.perf_counter()
    try:
        restored = decompress(blob)
        round_trip = "ok" if restored == data else "FAILED: the decompressed bytes differ"
    except Exception as err:  # a failed round trip is a result to report, not a crash
        round_trip = f"FAILED: {type(err).__name__}: {err}"
    decompress_s = time.perf_counter() - started
    return {
        "compressed_bytes": len(blob),
        "compress_s": compress_s,
        "decompress_s": decompress_s,
        "peak_rss_kib": peak_rss_kib(),
        "round_trip": round_trip,
    }


def measure_external(tool: External, path: Path) -> dict:
    data = path.read_bytes()
    with tempfile.TemporaryDirectory(prefix="nnzip-bench-") as folder:
        packed, unpacked = Path(folder) / "packed", Path(folder) / "unpacked"
        compress_s = run_template(tool.compress, path, packed)
        result = {"compressed_bytes": packed.stat().st_size, "compress_s": compress_s, "decompress_s": None}
        if tool.decompress:
            result["decompress_s"] = run_template(tool.decompress, packed, unpacked)
            same = unpacked.is_file() and unpacked.read_bytes() == data
            result["round_trip"] = "ok" if same else "FAILED: the decompressed bytes differ"
        else:
            result["round_trip"] = "not verified (no decompress command)"
    result["peak_rss_kib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return result


def run_template(template: str, source: Path, target: Path) -> float:
    args = [part.replace("{in}", str(source)).replace("{out}", str(target)) for part in shlex.split(template)]
    started = time.perf_counter()
    done = subprocess.run(args, capture_output=True, timeout=WORKER_TIMEOUT_S)
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise RuntimeError(f"{args[0]} exited with {done.returncode}: {message[-1] if message else 'no message'}")
    if not target.is_file():
        raise RuntimeError(f"{args[0]} wrote no {target.name} file")
    return time.perf_counter() - started


def peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def worker_main(args: list[str]) -> None:
    """Measure one compressor on one file and print the result as JSON (run in a fresh process)."""
    kind, path = args[0], Path(args[1])
    try:
        if kind == "builtin":
            result = measure_builtin(args[2], path.read_bytes())
        else:
            result = measure_external(External(args[2], args[3], args[4]), path)
    except Exception as err:
        result = {"error": f"{type(err).__name__}: {err}"}
    print(json.dumps(result))


def measure(tool: str | External, path: Path) -> Row:
    """Measure one row in a worker process."""
    name = tool if isinstance(tool, str) else tool.name
    settings = SETTINGS.get(name, "") if isinstance(tool, str) else tool.compress
    row = Row(file=str(path), compressor=name, settings=settings, original_bytes=path.stat().st_size)
    if isinstance(tool, str):
        command = [sys.executable, "-m", "nnzip.bench", "builtin", str(path), tool]
    else:
        command = [sys.executable, "-m", "nnzip.bench", "external", str(path), tool.name, tool.compress, tool.decompress]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S, env=os.environ)
        result = json.loads(done.stdout.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, json.JSONDecodeError, IndexError) as err:
        row.round_trip = f"FAILED: the worker did not report ({type(err).__name__})"
        return row
    if "error" in result:
        row.round_trip = f"FAILED: {result['error']}"
        return row

    row.compressed_bytes = result["compressed_bytes"]
    row.bpb = 8 * row.compressed_bytes / row.original_bytes if row.original_bytes else None
    row.compress_bytes_per_s = row.original_bytes / max(result["compress_s"], 1e-9)
    if result.get("decompress_s") is not None:
        row.decompress_bytes_per_s = row.original_bytes / max(result["decompress_s"], 1e-9)
    row.peak_rss_mib = result["peak_rss_kib"] / 1024
    row.round_trip = result["round_trip"]
    return row


def rows_json(rows: list[Row]) -> str:
    return json.dumps([dataclasses.asdict(row) for row in rows], indent=2)


def rows_csv(rows: list[Row]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[field.name for field in dataclasses.fields(Row)], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(dataclasses.asdict(row))
    return out.getvalue()


def rich_table(rows: list[Row]):
    """Render the rows as a rich table, with a file column only when there are several files."""
    from rich.table import Table

    several = len({row.file for row in rows}) > 1
    title = "nnzip bench" if several else f"nnzip bench: {rows[0].file}" if rows else "nnzip bench"
    table = Table(title=title)
    headers = (["file"] if several else []) + ["compressor", "size", "bpb", "compress", "decompress",
                                               "peak RSS", "round trip"]
    for header in headers:
        table.add_column(header, justify="left" if header in ("file", "compressor", "round trip") else "right")
    for row in rows:
        cells = [Path(row.file).name] if several else []
        cells += [
            f"{row.compressor} {row.settings}" if row.settings and row.compressor in SETTINGS else row.compressor,
            "" if row.compressed_bytes is None else f"{row.compressed_bytes:,}",
            "" if row.bpb is None else f"{row.bpb:.3f}",
            speed_text(row.compress_bytes_per_s),
            speed_text(row.decompress_bytes_per_s),
            "" if row.peak_rss_mib is None else f"{row.peak_rss_mib:.0f} MiB",
            row.round_trip,
        ]
        table.add_row(*cells)
    return table


def speed_text(bytes_per_s: float | None) -> str:
    if bytes_per_s is None:
        return ""
    for unit, scale in (("GB/s", 1e9), ("MB/s", 1e6), ("KB/s", 1e3)):
        if bytes_per_s >= scale:
            return f"{bytes_per_s / scale:.1f} {unit}"
    return f"{bytes_per_s:.0f} B/s"


def plot(rows: list[Row], path: Path) -> None:
    """Draw bpb against compression speed, one point per row, with a log speed axis."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise UsageError("--plot needs matplotlib: pip install 'nnzip[plot]'") from err

    figure, axis = plt.subplots(figsize=(7, 4.5))
    for row in rows:
        if row.bpb is None or row.compress_bytes_per_s is None:
            continue
        marker = "o" if row.compressor.startswith("nnzip") else "s"
        axis.scatter(row.compress_bytes_per_s, row.bpb, marker=marker)
        axis.annotate(row.compressor, (row.compress_bytes_per_s, row.bpb), textcoords="offset points",
                      xytext=(5, 4), fontsize=8)
    axis.set_xscale("log")
    axis.set_xlabel("compression speed (bytes/s, log scale)")
    axis.set_ylabel("bits per byte (lower is better)")
    axis.set_title(", ".join(sorted({Path(row.file).name for row in rows})))
    axis.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    # A temporary file beside the target, renamed when complete, as for compressed output.
    tmp = path.with_name(f".{path.name}.tmp.png")
    try:
        figure.savefig(tmp, dpi=120)
        os.replace(tmp, path)
    except OSError as err:
        raise UsageError(f"cannot write plot {path}: {err.strerror or err}") from err
    finally:
        tmp.unlink(missing_ok=True)
        plt.close(figure)


if __name__ == "__main__":
    worker_main(sys.argv[1:])
