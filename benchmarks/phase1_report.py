"""Evaluation and report of phase 1 (run by benchmarks/phase1.py, which documents the stages).

Every number in the report comes from this run of the script, on this machine, except the
training wall time of runs reused from an earlier training (marked as such).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nnzip import bench  # noqa: E402
from nnzip.baseline import exact_size, stream_logits  # noqa: E402
from nnzip.codec import stream_lengths  # noqa: E402
from nnzip.data import enwik8_split, find_shared_data, load_corpus  # noqa: E402
from nnzip.engine import load_engine  # noqa: E402
from nnzip.train import load_model  # noqa: E402

REPORT = ROOT / "docs" / "phase1-report.md"
PLOT = ROOT / "docs" / "phase1-plot.png"
CLASSIC = ["gzip", "bzip2", "xz", "zstd", "zstd-ultra", "brotli"]


def validation_bytes() -> bytes:
    shared = find_shared_data()
    return enwik8_split(shared / "enwik8-head", "validation").tobytes()


@torch.no_grad()
def float_pass(model, data: bytes, context: int | None) -> tuple[float, float]:
    """Float bpb (softmax, no frequency rounding, no header) over the codec's streams, and the
    bytes/s of the forward passes that produced it."""
    view = np.frombuffer(data, np.uint8)
    bits, start, seconds = 0.0, 0, 0.0
    for length in stream_lengths(len(view)):
        stream = view[start : start + length]
        started = time.perf_counter()
        logits = stream_logits(model, stream, context)
        seconds += time.perf_counter() - started
        log_probs = torch.log_softmax(logits.double(), dim=-1)
        bits -= log_probs[torch.arange(length), torch.from_numpy(stream.astype(np.int64))].sum().item() / np.log(2)
        start += length
    return bits / len(view), len(view) / seconds


def evaluate_ssm(folder: Path, data: bytes) -> dict:
    from nnzip.export import export_model

    model, meta = load_model(folder)
    model.set_qat(True)  # the float model as trained at the end, fake quantizers on
    model.eval()
    float_bpb, forward_speed = float_pass(model, data, context=None)

    export = folder / "export.safetensors"
    if not export.is_file():
        export_model(model, load_corpus(meta["train"]["data"][0]), export)
    blob, verified, compress_speed, decompress_speed = timed_round_trip(load_engine(export, "rust"), data)
    return {
        "parameters": model.num_parameters(),
        "float_bpb": float_bpb,
        "exact_bytes": len(blob),
        "exact_bpb": 8 * len(blob) / len(data),
        "verified": verified,
        "forward_bytes_per_s": forward_speed,
        "compress_bytes_per_s": compress_speed,
        "decompress_bytes_per_s": decompress_speed,
        "lr": meta["train"]["lr"],
    }


def timed_round_trip(engine, data: bytes) -> tuple[bytes, bool, float, float]:
    """Compress and decompress `data` with `engine`; return the container, whether it decoded
    to `data`, and the compress and decompress speeds in bytes/s."""
    started = time.perf_counter()
    blob = engine.compress(data)
    compress_speed = len(data) / (time.perf_counter() - started)
    started = time.perf_counter()
    verified = engine.decompress(blob) == data
    decompress_speed = len(data) / (time.perf_counter() - started)
    return blob, verified, compress_speed, decompress_speed


def evaluate_transformer(folder: Path, data: bytes) -> dict:
    model, meta = load_model(folder)
    model.eval()
    context = meta["train"]["seq_len"]
    float_bpb, forward_speed = float_pass(model, data, context)
    size = exact_size(model, data, context)
    return {
        "parameters": model.num_parameters(),
        "float_bpb": float_bpb,
        "exact_bytes": size.compressed,
        "exact_bpb": size.bpb,
        "verified": size.verified,
        "forward_bytes_per_s": forward_speed,
        "compress_bytes_per_s": None,
        "decompress_bytes_per_s": None,
        "lr": meta["train"]["lr"],
        "context": context,
    }


def training_record(folder: Path) -> dict:
    record = json.loads((folder / "phase1.json").read_text())
    meta = json.loads((folder / "config.json").read_text())
    train = meta["train"]
    record["training_bytes"] = train["steps"] * train["batch_size"] * train["seq_len"]
    return record


def classic_rows(data: bytes) -> list[bench.Row]:
    with tempfile.TemporaryDirectory(prefix="nnzip-phase1-") as folder:
        path = Path(folder) / "validation.bin"
        path.write_bytes(data)
        rows = []
        for name in CLASSIC:
            row = bench.measure(name, path)
            if row.round_trip.startswith("FAILED") and "not installed" in row.round_trip:
                continue
            row.file = "validation"
            rows.append(row)
    return rows


def plot(results: dict, classic: list[bench.Row]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7.5, 4.8))
    for row in classic:
        axis.scatter(row.compress_bytes_per_s, row.bpb, marker="s", color="tab:gray")
        axis.annotate(row.compressor, (row.compress_bytes_per_s, row.bpb), textcoords="offset points",
                      xytext=(5, 4), fontsize=8)
    for (preset, arch), result in results.items():
        speed = result["compress_bytes_per_s"] or result["forward_bytes_per_s"]
        label = f"{preset} {arch}" + ("" if result["compress_bytes_per_s"] else " (float forward)")
        axis.scatter(speed, result["exact_bpb"], marker="o", color="tab:blue" if arch == "ssm" else "tab:orange")
        axis.annotate(label, (speed, result["exact_bpb"]), textcoords="offset points", xytext=(5, -10), fontsize=8)
    axis.set_xscale("log")
    axis.set_xlabel("compression speed, bytes/s (log scale)")
    axis.set_ylabel("exact bits per byte on validation (lower is better)")
    axis.set_title("Phase 1: enwik8-head validation part, 400,000 bytes")
    axis.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(PLOT, dpi=120)
    plt.close(figure)


def measured(record: dict) -> str:
    """Say where a model row's numbers come from: this run, or the ledger with date and machine."""
    if not record.get("ledger"):
        return "this run"
    return f"ledger: {record['ledger']}, {record['machine']}"


def speed(value: float | None) -> str:
    if value is None:
        return ""
    if value < 1e6:
        return f"{value / 1000:,.1f} KB/s"
    return f"{value / 1e6:,.1f} MB/s"


def write_report(runs: Path, sweep: dict, models: dict, ledger, criteria: str, machine: str) -> None:
    """Evaluate the models whose runs are present (the ledger gives the others), measure the
    classic compressors, and write the report and the plot."""
    data = validation_bytes()
    results, records = {}, {}
    for (preset, arch), run in models.items():
        name = run.folder.name
        if run.present:
            print(f"phase1: evaluating {preset} {arch}", file=sys.stderr)
            results[(preset, arch)] = (evaluate_ssm if arch == "ssm" else evaluate_transformer)(run.folder, data)
            ledger.record(name, run.recipe, evaluation=results[(preset, arch)])
            records[(preset, arch)] = run.training
        else:
            entry = ledger.lookup(name, run.recipe)
            if entry is None or "evaluation" not in entry:
                sys.exit(f"phase1: {name} is neither in {runs} nor evaluated in the ledger; run with --retrain")
            results[(preset, arch)] = entry["evaluation"]
            records[(preset, arch)] = {**run.training, "ledger": entry["measured"], "machine": entry["machine"]}
    classic = classic_rows(data)
    plot(results, classic)
    (runs / "results.json").write_text(json.dumps({f"{p} {a}": r for (p, a), r in results.items()}, indent=2))
    REPORT.write_text(render(sweep, results, records, classic, criteria, machine, len(data), ledger))
    print(f"phase1: wrote {REPORT.relative_to(ROOT)} and {PLOT.relative_to(ROOT)}", file=sys.stderr)


def mlp_section(ledger) -> list[str]:
    """Render the MLP ablation section: its rule (from docs/mlp.md) and, once run, its table
    (benchmarks/mlp_ablation.py puts its results in the ledger)."""
    text = (ROOT / "docs" / "mlp.md").read_text()
    rule = text[text.index("## Keep-or-cut rule") :].split("\n", 1)[1]
    rule = rule[: rule.index("`python benchmarks/mlp_ablation.py`")].strip()
    lines = ["## MLP ablation: KAN against gated", "", rule, ""]
    results = ledger.get("mlp_ablation")
    if results is None:
        return lines + ["Not run yet: `python benchmarks/mlp_ablation.py` runs it.", ""]
    plan = results["plan"]
    budget = plan["gated"]["steps"] * plan["gated"]["seconds_per_step"]
    lines += [f"Measured {results['measured']} on {results['machine']} (results ledger). Training budget: about {budget:.0f} s per run, measured at {plan['gated']['seconds_per_step']:.3f} s "
              f"per step for gated and {plan['kan']['seconds_per_step']:.3f} for KAN.", ""]
    lines += ["| arm | seed | parameters | steps | exact bpb | compress (reference) |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for arm, runs in results["runs"].items():
        for r in runs:
            lines.append(f"| {arm} | {r['seed']} | {r['parameters']:,} | {r['steps']} | {r['exact_bpb']:.4f} | "
                         f"{r['compress_bytes_per_s']:.0f} B/s |")
    d = results["decision"]
    lines += ["", f"Mean exact bpb: gated {d['mean_bpb']['gated']:.4f}, KAN {d['mean_bpb']['kan']:.4f}; seed spread "
              f"{d['spread']:.4f}. KAN better by more than the spread: {'yes' if d['kan_better'] else 'no'}; KAN coding "
              f"speed at least 80% of gated: {'yes' if d['kan_fast_enough'] else 'no'}. **Decision: keep {d['winner']}.**", ""]
    return lines


def retrieval_section(ledger) -> list[str]:
    """Render the retrieval ablation (benchmarks/retrieval_ablation.py) from the ledger."""
    arms = ("none", "history", "history-rest", "history+index")
    found = {arm: ledger.data["entries"].get(f"retrieval-{arm}") for arm in arms}
    lines = ["## Retrieval ablation", ""]
    if found["none"] is None or found["history"] is None:
        return lines + ["Not run yet: `python benchmarks/retrieval_ablation.py` runs it.", ""]
    entries = {arm: entry for arm, entry in found.items() if entry is not None}
    lines += [
        "Every arm is the default model's recipe (`small`, gated MLP of 128 channels, 1,800 steps at",
        "learning rate 4e-3); they differ in `retrieval` and in their training bytes. The arms `none`",
        "and `history` train on the whole training part (3,200,000 bytes). The arm `history+index`",
        "builds its index (`nnzip index build`) from the first 1,048,576 bytes of the training part and",
        "trains on the other 2,151,424, so it draws on the same bytes as the first two without training",
        "on its index. The arm `history-rest` trains on those 2,151,424 bytes without the index, which",
        "isolates what the index adds.",
        "Sizes are bytes of `.nz` data coded by nnzip-core. \"Model only\" is the model-coded",
        "container; `nnzip.compress` may store a block instead when that is smaller. The repeat",
        "inputs are 64 KiB written twice: random bytes, and the start of the validation part.",
        "",
        "| retrieval | validation bytes | exact bpb | compress | decompress | random once | random twice, model only | "
        "random twice, `nnzip.compress` | text once | text twice, model only | text twice, `nnzip.compress` | measured |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for arm, entry in entries.items():
        e = entry["evaluation"]
        lines.append(
            f"| {arm} | {e['exact_bytes']:,} | **{e['exact_bpb']:.4f}** | {speed(e['compress_bytes_per_s'])} | "
            f"{speed(e['decompress_bytes_per_s'])} | {e['random_once_model']:,} | {e['random_twice_model']:,} | "
            f"{e['random_twice_nnzip']:,} | {e['text_once_model']:,} | {e['text_twice_model']:,} | "
            f"{e['text_twice_nnzip']:,} | {entry['measured']}, {entry['machine']} |"
        )
    none, history = entries["none"]["evaluation"], entries["history"]["evaluation"]
    gain = 100 * (1 - history["exact_bpb"] / none["exact_bpb"])
    limit = 1.1 * REPEAT_BYTES_ONCE

    def second_copy(e: dict, name: str) -> str:
        extra = e[f"{name}_twice_model"] - e[f"{name}_once_model"]
        return f"{extra:,} bytes ({8 * extra / REPEAT_BYTES_ONCE:.2f} bits per byte)"

    lines += [
        "",
        f"Own-history retrieval changes the validation size by {-gain:+.1f}% "
        f"({none['exact_bpb']:.4f} to {history['exact_bpb']:.4f} bpb) and decompression speed from "
        f"{speed(none['decompress_bytes_per_s'])} to {speed(history['decompress_bytes_per_s'])}, because nnzip-core "
        "decodes a model with retrieval on one thread.",
        "",
        f"Coded by the model, the second copy of the text costs {second_copy(history, 'text')} with retrieval and "
        f"{second_copy(none, 'text')} without. The model spends {8 * history['random_once_model'] / REPEAT_BYTES_ONCE:.2f} "
        f"bits per byte on random bytes, and with retrieval the second copy of them still costs "
        f"{second_copy(history, 'random')} (`docs/retrieval.md`, Limits, gives the reason). `nnzip.compress` "
        f"therefore stores that block as a zstd frame, which finds the repeat itself: {history['random_twice_nnzip']:,} "
        f"bytes, {'within' if history['random_twice_nnzip'] <= limit else 'above'} 1.1 times one copy "
        f"({limit:,.0f} bytes).",
        "",
    ]
    if "history+index" in entries:
        lines += index_findings(entries)
    return lines


def index_findings(entries: dict) -> list[str]:
    """Sentences on the index arm: against history-rest (same training bytes) if measured, and
    against the history arm (all training bytes)."""
    index, history = entries["history+index"]["evaluation"], entries["history"]["evaluation"]

    def change(before: dict) -> str:
        return f"{-100 * (1 - index['exact_bpb'] / before['exact_bpb']):+.1f}% ({before['exact_bpb']:.4f} to {index['exact_bpb']:.4f} bpb)"

    lines = []
    if "history-rest" in entries:
        lines.append(
            f"With the same 2,151,424 training bytes, the external index changes the validation size by "
            f"{change(entries['history-rest']['evaluation'])}."
        )
    lines.append(
        f"Against own history trained on all 3,200,000 bytes, the index arm changes it by {change(history)}: "
        f"{'the index is worth more' if index['exact_bpb'] < history['exact_bpb'] else 'the index is worth less'} "
        "than training on its bytes. It decompresses at "
        f"{speed(index['decompress_bytes_per_s'])}."
    )
    return [" ".join(lines), ""]


REPEAT_BYTES_ONCE = 65536


def render(sweep, results, records, classic, criteria, machine, length, ledger) -> str:
    gzip_bpb = next(row.bpb for row in classic if row.compressor == "gzip")
    lines = [
        "# Phase 1 report: a small SSM against a same-size transformer",
        "",
        "Written by `python benchmarks/phase1.py`; do not edit by hand. Every number below comes",
        "from the run that wrote this file, on "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores ({machine}), except",
        "the training wall time of a run reused from an earlier training, and the rows and tables",
        "taken from the results ledger (`benchmarks/results/phase1.json`), which were measured by an",
        "earlier run of the script and show the date and machine of that run.",
        "",
        "## Success criteria",
        "",
        criteria.rstrip(),
        "",
        "## Tuning",
        "",
        "Both architectures got the same sweep: the `fast` size, 400 steps per learning rate, trained",
        "on the training part without its last 200,000 bytes and scored (bpb of 128 windows of 256",
        "bytes) on those bytes. The validation part chose nothing.",
        "",
        "| architecture | " + " | ".join(f"lr {lr:g}" for lr in sweep["ssm"]["scores"]) + " | chosen |",
        "| --- | " + " | ".join("---:" for _ in sweep["ssm"]["scores"]) + " | ---: |",
    ]
    for arch, result in sweep.items():
        cells = " | ".join(f"{bpb:.4f}" for bpb in result["scores"].values())
        lines.append(f"| {arch} | {cells} | {result['best']:g} |")
    dates = sorted({date for result in sweep.values() for date in result.get("ledger", [])})
    if dates:
        lines += ["", f"Scores from the results ledger, measured {', '.join(dates)}."]

    reported = sorted({preset for preset, _ in results}, key=["fast", "small", "base"].index)
    missing = [preset for preset in ("fast", "small") if preset not in reported]
    lines += [
        "",
        f"## Models on the validation part ({length:,} bytes)",
        "",
    ]
    if missing:
        lines += [
            f"NOTE: this run reports the {', '.join(reported)} preset(s) only; the {', '.join(missing)} pair is not",
            "trained yet. `python benchmarks/phase1.py --presets fast,small` trains it (with the learning rates",
            "chosen above) and regenerates this file.",
            "",
        ]
    lines += [
        "Exact bpb is the size of a real container with every stream and header byte, decoded again",
        "to check it. For the SSM it is the `.nz` file of its integer export, coded by nnzip-core; for",
        "the transformer the same streams, frequency rule and range coder in Python, from its float",
        "logits (windows of its 256-byte training context, see `nnzip/baseline.py`). Float bpb is the",
        "cross-entropy of the float model with no rounding. Forward speed is PyTorch on this CPU",
        "producing those logits; coding speed is nnzip-core with 2 threads.",
        "",
        "| model | parameters | lr | training bytes | training time | float bpb | exact bpb | round trip | forward | compress | decompress | measured |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |",
    ]
    for (preset, arch), result in results.items():
        record = records[(preset, arch)]
        if record.get("reused"):
            wall = f"reused ({Path(record['reused']).name})"
        else:
            wall = f"{record['seconds'] / 60:.0f} min" if record.get("seconds") else ""
        lines.append(
            f"| {preset} {arch} | {result['parameters']:,} | {result['lr']:g} | {record['training_bytes']:,} | {wall} | "
            f"{result['float_bpb']:.4f} | **{result['exact_bpb']:.4f}** | {'ok' if result['verified'] else 'FAILED'} | "
            f"{speed(result['forward_bytes_per_s'])} | {speed(result['compress_bytes_per_s'])} | "
            f"{speed(result['decompress_bytes_per_s'])} | {measured(record)} |"
        )

    lines += [
        "",
        "## Classic compressors on the same bytes",
        "",
        "Through their Python modules, each in a worker process (`nnzip bench`'s measurement).",
        "",
        "| compressor | settings | bytes | bpb | compress | decompress | round trip |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in classic:
        lines.append(f"| {row.compressor} | {row.settings} | {row.compressed_bytes:,} | {row.bpb:.4f} | "
                     f"{speed(row.compress_bytes_per_s)} | {speed(row.decompress_bytes_per_s)} | {row.round_trip} |")

    lines += ["", "![bpb against speed](phase1-plot.png)", ""]
    lines += mlp_section(ledger)
    lines += retrieval_section(ledger)
    lines += ["## Verdicts", ""]
    for preset in sorted({preset for preset, _ in results}, key=["fast", "small", "base"].index):
        ssm, transformer = results.get((preset, "ssm")), results.get((preset, "transformer"))
        if ssm is None or transformer is None:
            continue
        beats_gzip = ssm["exact_bpb"] < gzip_bpb
        ratio = ssm["exact_bpb"] / transformer["exact_bpb"]
        lines += [
            f"`{preset}` preset:",
            "",
            f"1. nnzip beats gzip: **{'holds' if beats_gzip else 'fails'}**, {ssm['exact_bpb']:.4f} bpb against "
            f"gzip -9's {gzip_bpb:.4f} ({100 * (1 - ssm['exact_bpb'] / gzip_bpb):.1f}% smaller)."
            if beats_gzip else
            f"1. nnzip beats gzip: **fails**, {ssm['exact_bpb']:.4f} bpb against gzip -9's {gzip_bpb:.4f}.",
            f"2. Within 10% of the same-size transformer: **{'holds' if ratio <= 1.10 else 'fails'}**, "
            f"{ssm['exact_bpb']:.4f} against {transformer['exact_bpb']:.4f} bpb, a ratio of {ratio:.3f} "
            f"({'the SSM is better' if ratio < 1 else 'the transformer is better'}).",
            "",
        ]
        if not beats_gzip:
            lines += ["Implication: at this size the model does not pay for itself against the floor; it must not be a",
                      "default until it does.", ""]
        if ratio > 1.10:
            lines += ["Implication: at this size and budget the transformer compresses clearly better, so the claim of",
                      "matching it does not hold here; the SSM keeps only its cost advantages (constant state, no",
                      "context limit, the integer engine), and the next phase must close the gap before building on it.",
                      ""]
    return "\n".join(lines).rstrip() + "\n"
