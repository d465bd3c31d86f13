"""Phase 1: nnzip's SSM against a same-size transformer and the classic compressors.

Usage (after `pip install -e '.[train,bench]'`):
    python benchmarks/phase1.py [--runs runs/phase1] [--reuse runs/small-v1 ...] [--presets fast,small] [--retrain]

One command does every stage and writes docs/phase1-report.md and docs/phase1-plot.png:

1. Learning-rate sweep, the same for both architectures: the `fast` size, learning rates
   1e-3, 2e-3 and 4e-3, 400 steps each, trained on the training part without its last
   200,000 bytes and scored on those bytes (the tuning split). The validation part is never
   used to choose anything.
2. Full runs: each preset in --presets and each architecture, 1,800 steps of 32 windows of
   256 bytes (14.7M bytes) with the architecture's best sweep learning rate. The SSM ends with
   quantization-aware training (the last 40% of steps), as the shipped models do; the
   transformer stays a float model.
3. Evaluation on the 400,000-byte validation part. The SSM's exact size is its `.nz` file
   after export, coded by nnzip-core. The transformer's exact size comes from the same
   frequency rule and range coder (`nnzip.baseline`). Also measured: the float bpb of both,
   coding speed, and the classic compressors through `nnzip bench`'s measurement.
4. The report, with the two success criteria fixed before the runs.

Runs that exist with the same recipe and all their steps are loaded, not trained again:
under --runs, or in a --reuse folder (such as the runs that trained the shipped models).
A run whose folder is missing is taken from the results ledger, benchmarks/results/phase1.json
(see benchmarks/ledger.py), when the ledger contains it with the same recipe; the report shows the
date it was measured. --retrain ignores the ledger and trains such runs again.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from ledger import RESULTS, Ledger, cpu_model  # noqa: E402  (benchmarks/ledger.py)
from nnzip.data import enwik8_split, find_shared_data  # noqa: E402
from nnzip.train import TrainConfig  # noqa: E402

SWEEP_PRESET = "fast"
SWEEP_LRS = (1e-3, 2e-3, 4e-3)
SWEEP_STEPS = 400
TUNE_BYTES = 200_000
FULL_STEPS = 1800
ARCHS = ("ssm", "transformer")
# Fields of TrainConfig that define what a run learns; the others only change what it logs.
RECIPE_FIELDS = ("preset", "arch", "overrides", "data", "steps", "batch_size", "seq_len", "lr", "min_lr",
                 "warmup", "weight_decay", "qat_start", "seed")

CRITERIA = """\
Two success criteria, fixed before any phase 1 result was seen:

1. nnzip beats gzip: the exact `.nz` bpb of the SSM is below gzip -9's on the validation part.
2. nnzip is within 10% of the same-size transformer: the SSM's exact bpb is at most 1.10
   times the transformer's exact bpb, for the same preset, data, steps and tuning effort.
"""


@dataclasses.dataclass
class Run:
    """A full run: its folder, recipe and training record, and whether the folder contains it."""

    folder: Path
    recipe: dict
    training: dict
    present: bool


def prepare_data(runs: Path) -> dict[str, str]:
    """Write the tuning split files and return the data specs of each stage."""
    shared = find_shared_data()
    if shared is None:
        sys.exit("phase1.py: the shared data folder with enwik8-head was not found")
    train = enwik8_split(shared / "enwik8-head", "train")
    folder = runs / "data"
    folder.mkdir(parents=True, exist_ok=True)
    sweep_train, tune = folder / "sweep-train.bin", folder / "tune.bin"
    if not sweep_train.exists():
        sweep_train.write_bytes(train[:-TUNE_BYTES].tobytes())
        tune.write_bytes(train[-TUNE_BYTES:].tobytes())
    return {"sweep_train": str(sweep_train), "tune": str(tune)}


def run_config(preset: str, arch: str, lr: float, steps: int, data: str, valid: str) -> TrainConfig:
    return TrainConfig(preset=preset, arch=arch, data=[data], valid=valid, steps=steps, lr=lr,
                       eval_every=min(300, steps), eval_windows=128, eval_len=256)


def recipe(cfg: TrainConfig | dict) -> dict:
    values = dataclasses.asdict(cfg) if isinstance(cfg, TrainConfig) else cfg
    return {name: values.get(name, TrainConfig.arch if name == "arch" else None) for name in RECIPE_FIELDS}


def finished_run(folder: Path, cfg: TrainConfig) -> bool:
    """Return True if `folder` has a run of `cfg`'s recipe that reached its last step."""
    path = folder / "config.json"
    if not path.is_file():
        return False
    meta = json.loads(path.read_text())
    return meta.get("step") == cfg.steps and recipe(meta["train"]) == recipe(cfg)


def train_or_load(folder: Path, cfg: TrainConfig, reuse: list[Path], ledger: Ledger, retrain: bool) -> dict:
    """Return the training record of `cfg`: from a finished run in `folder`, else from the
    ledger (unless `retrain`), else from a finished run in `reuse`, else by training it."""
    from nnzip.train import train

    record_path = folder / "phase1.json"
    if finished_run(folder, cfg) and record_path.is_file():
        record = json.loads(record_path.read_text())
        record.setdefault("training_bytes", training_bytes(cfg))
        ledger.record(folder.name, recipe(cfg), training=record)
        return record
    entry = None if retrain else ledger.lookup(folder.name, recipe(cfg))
    if entry is not None and "training" in entry:
        print(f"phase1: {folder.name}: from the ledger, measured {entry['measured']}", file=sys.stderr)
        return {**entry["training"], "ledger": entry["measured"], "machine": entry["machine"]}
    for candidate in reuse:
        if finished_run(candidate, cfg):
            print(f"phase1: {folder.name}: reusing {candidate}", file=sys.stderr)
            shutil.copytree(candidate, folder, dirs_exist_ok=True)
            record = {"valid_bpb": None, "seconds": None, "reused": str(candidate), "training_bytes": training_bytes(cfg)}
            record_path.write_text(json.dumps(record))
            ledger.record(folder.name, recipe(cfg), training=record)
            return record

    print(f"phase1: training {folder.name}", file=sys.stderr)
    resume = (folder / "config.json").is_file() and recipe(json.loads((folder / "config.json").read_text())["train"]) == recipe(cfg)
    result = train(cfg, folder, resume=resume, progress=sys.stderr.isatty())
    record = {"valid_bpb": result["valid_bpb"], "seconds": result["seconds"], "reused": None,
              "training_bytes": training_bytes(cfg)}
    record_path.write_text(json.dumps(record))
    ledger.record(folder.name, recipe(cfg), training=record)
    return record


def training_bytes(cfg: TrainConfig) -> int:
    return cfg.steps * cfg.batch_size * cfg.seq_len


def sweep(runs: Path, data: dict[str, str], reuse: list[Path], ledger: Ledger, retrain: bool) -> dict[str, dict]:
    """Train the sweep runs and return, per architecture, the tuning bpb of each learning rate,
    the best one, and the dates and machines of the scores taken from the ledger."""
    results: dict[str, dict] = {}
    for arch in ARCHS:
        scores, dates = {}, set()
        for lr in SWEEP_LRS:
            cfg = run_config(SWEEP_PRESET, arch, lr, SWEEP_STEPS, data["sweep_train"], data["tune"])
            record = train_or_load(runs / f"sweep-{SWEEP_PRESET}-{arch}-lr{lr:g}", cfg, reuse, ledger, retrain)
            scores[lr] = record["valid_bpb"]
            if record.get("ledger"):
                dates.add(f"{record['ledger']} on {record['machine']}")
        results[arch] = {"scores": scores, "best": min(scores, key=scores.get), "ledger": sorted(dates)}
    return results


def full_runs(runs: Path, presets: list[str], best_lr: dict[str, float], reuse: list[Path], ledger: Ledger,
              retrain: bool) -> dict[tuple, Run]:
    """Train or load the full run of each preset and architecture."""
    result = {}
    for preset in presets:
        for arch in ARCHS:
            cfg = run_config(preset, arch, best_lr[arch], FULL_STEPS, "enwik8-train", "enwik8-valid")
            folder = runs / f"{preset}-{arch}"
            record = train_or_load(folder, cfg, reuse, ledger, retrain)
            result[(preset, arch)] = Run(folder, recipe(cfg), record, finished_run(folder, cfg))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "phase1", help="folder of the phase 1 runs")
    parser.add_argument("--reuse", type=Path, nargs="*", default=[], help="finished runs to reuse when the recipe matches")
    parser.add_argument("--presets", default="fast,small", help="presets of the full runs, comma-separated")
    parser.add_argument("--train-only", action="store_true", help="stop after training")
    parser.add_argument("--retrain", action="store_true",
                        help="train and measure every run whose folder is missing, ignoring the ledger")
    parser.add_argument("--ledger", type=Path, default=RESULTS / "phase1.json", help="the results ledger")
    args = parser.parse_args()

    args.runs.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(args.ledger)
    data = prepare_data(args.runs)
    sweep_results = sweep(args.runs, data, args.reuse, ledger, args.retrain)
    best_lr = {arch: sweep_results[arch]["best"] for arch in ARCHS}
    (args.runs / "sweep.json").write_text(json.dumps({arch: {"scores": {f"{lr:g}": bpb for lr, bpb in r["scores"].items()},
                                                            "best": r["best"], "ledger": r["ledger"]}
                                                      for arch, r in sweep_results.items()}, indent=2))
    print(f"phase1: best learning rates {best_lr}", file=sys.stderr)
    models = full_runs(args.runs, args.presets.split(","), best_lr, args.reuse, ledger, args.retrain)
    if args.train_only:
        return
    from phase1_report import write_report  # noqa: E402  (benchmarks/phase1_report.py)

    write_report(args.runs, sweep_results, models, ledger, CRITERIA, machine=cpu_model())


if __name__ == "__main__":
    main()
