"""The retrieval ablation: the default model's recipe without retrieval, with own-history
retrieval, and with own history plus an external index.

Usage (after `pip install -e '.[train,bench]'`):
    python benchmarks/retrieval_ablation.py [--runs runs/retrieval] [--export none=models/nnzip-small-v2.safetensors]

Every arm is the `small` preset with a gated MLP of 128 channels, trained for 1,800 steps
at learning rate 4e-3. The arms `none` and `history` train on the whole enwik8-head training
part and differ only in the config's `retrieval` field. The arm `history+index` indexes the
first MiB of the training part (`nnzip index build`) and trains on the rest, and the arm
`history-rest` trains on that rest without the index. Each arm's export is measured with
nnzip-core on:

- the 400,000-byte validation part: exact bpb of the `.nz` file, verified, and coding speed;
- 64 KiB of random bytes written twice: the model-coded container alone, and what
  `nnzip.compress` writes (which stores a block when that is smaller);
- the first 64 KiB of the validation part written twice.

--export ARM=PATH takes an arm's export from PATH instead of training it; the shipped
default model `nnzip-small-v2` is the `none` arm's recipe, `nnzip-small-v3` the `history`
arm's, and `nnzip-small-index-v1` the `history+index` arm's. Results go to the results ledger
(benchmarks/results/phase1.json), from which benchmarks/phase1.py puts them into
docs/phase1-report.md. Arms in the ledger with the same recipe are not measured again
unless --remeasure is given.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from ledger import RESULTS, Ledger  # noqa: E402  (benchmarks/ledger.py)
from phase1 import recipe  # noqa: E402  (benchmarks/phase1.py)
from phase1_report import timed_round_trip  # noqa: E402  (benchmarks/phase1_report.py)
from nnzip.data import enwik8_split, find_shared_data, load_corpus  # noqa: E402
from nnzip.train import TrainConfig  # noqa: E402

BASE = ["mlp=gated", "mlp_hidden=128"]
# The index arm keeps the first MiB of the training part as its index and trains on the rest,
# so it draws on the same 3,200,000 bytes as the first two arms, and no arm trains on the index.
# The arm history-rest trains on the same bytes as the index arm, without the index.
INDEX_BYTES = 1 << 20
INDEX_CORPUS = f"enwik8-train[:{INDEX_BYTES}]"
INDEX_DATA = [f"enwik8-train[{INDEX_BYTES}:]"]
INDEX_NAME = "enwik8-1m.nzi"
ARMS = {
    "none": (BASE, ["enwik8-train"]),
    "history": (BASE + ["retrieval=history"], ["enwik8-train"]),
    "history-rest": (BASE + ["retrieval=history"], INDEX_DATA),
    "history+index": (BASE + ["retrieval=history+index"], INDEX_DATA),
}
REPEAT_BYTES = 65536
RANDOM_SEED = 6


def arm_config(arm: str, index: Path | None = None) -> TrainConfig:
    overrides, data = ARMS[arm]
    return TrainConfig(preset="small", overrides=overrides, data=data, lr=4e-3, steps=1800, eval_every=300,
                       eval_windows=128, eval_len=256, index=str(index or ""))


def built_index(folder: Path) -> Path:
    """Build the index arm's index into `folder` unless it is there; return its path."""
    from nnzip.index import build

    path = folder / INDEX_NAME
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        path.write_bytes(build(load_corpus(INDEX_CORPUS).tobytes()))
    return path


def trained_export(folder: Path, cfg: TrainConfig) -> Path:
    """Train `cfg` into `folder` (resuming a started run) and export it; return the export."""
    import json

    from nnzip.export import export_model
    from nnzip.train import load_model, train

    meta_path = folder / "config.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else None
    if meta is None or meta["step"] < cfg.steps:
        train(cfg, folder, resume=meta is not None, progress=sys.stderr.isatty())
    export = folder / "export.safetensors"
    if not export.is_file():
        model, meta = load_model(folder)
        export_model(model, load_corpus(meta["train"]["data"][0]), export)
    return export


def measure(export: Path) -> dict:
    """Measure an export with nnzip-core: validation bpb and speed, and the two repeat tests."""
    import nnzip
    from nnzip.engine import load_engine

    engine = load_engine(export, "rust")
    valid = enwik8_split(find_shared_data() / "enwik8-head", "validation").tobytes()
    blob, verified, compress_speed, decompress_speed = timed_round_trip(engine, valid)

    random = np.random.default_rng(RANDOM_SEED).integers(0, 256, REPEAT_BYTES, dtype=np.uint8).tobytes()
    text = valid[:REPEAT_BYTES]
    result = {
        "exact_bytes": len(blob),
        "exact_bpb": 8 * len(blob) / len(valid),
        "verified": verified,
        "compress_bytes_per_s": compress_speed,
        "decompress_bytes_per_s": decompress_speed,
    }
    for name, once in (("random", random), ("text", text)):
        twice = once + once
        model_only = engine.compress(twice)
        members = nnzip.compress(twice, model=str(export))
        assert engine.decompress(model_only) == twice
        assert nnzip.decompress(members, model=str(export)) == twice
        result[f"{name}_once_model"] = len(engine.compress(once))
        result[f"{name}_twice_model"] = len(model_only)
        result[f"{name}_twice_nnzip"] = len(members)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "retrieval", help="folder of the training runs")
    parser.add_argument("--export", action="append", default=[], metavar="ARM=PATH",
                        help="use this export for an arm instead of training it")
    parser.add_argument("--remeasure", action="store_true", help="measure arms that the ledger already contains")
    args = parser.parse_args()
    exports = dict(item.split("=", 1) for item in args.export)
    ledger = Ledger(RESULTS / "phase1.json")

    for arm in ARMS:
        cfg = arm_config(arm, built_index(args.runs / arm) if arm == "history+index" else None)
        name = f"retrieval-{arm}"
        if not args.remeasure and ledger.lookup(name, recipe(cfg)) is not None:
            print(f"retrieval_ablation: {arm}: in the ledger", file=sys.stderr)
            continue
        export = Path(exports[arm]) if arm in exports else trained_export(args.runs / arm, cfg)
        print(f"retrieval_ablation: measuring {arm} ({export})", file=sys.stderr)
        ledger.record(name, recipe(cfg), evaluation=measure(export), export=str(export.name))

    for arm in ARMS:
        entry = ledger.lookup(f"retrieval-{arm}", recipe(arm_config(arm)))
        print(arm, entry["evaluation"] if entry else None)


if __name__ == "__main__":
    main()
