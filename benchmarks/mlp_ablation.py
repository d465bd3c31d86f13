"""The MLP ablation: KAN against gated, at equal parameters and equal training wall time.

Usage:
    python benchmarks/mlp_ablation.py [--runs runs/mlp-ablation] [--budget 600]

The rule it applies is fixed in docs/mlp.md. Each arm adds its MLP to the `fast` preset; its
steps are the budget (seconds) divided by its own seconds per step, measured here first. Two
seeds per arm. Each run is exported, and its exact bpb on the validation part and its coding
speed come from the Python reference engine (nnzip-core has no MLP yet). Writes results.json
in the runs folder and into the results ledger (benchmarks/results/phase1.json), from which
benchmarks/phase1.py puts it into docs/phase1-report.md, and prints the table and the
decision. Finished runs of the same recipe are loaded, not trained again.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from ledger import RESULTS, Ledger  # noqa: E402  (benchmarks/ledger.py)
from nnzip import codec  # noqa: E402
from nnzip.config import build_config  # noqa: E402
from nnzip.data import enwik8_split, find_shared_data, load_corpus, sample_windows  # noqa: E402
from nnzip.objective import bpb_loss  # noqa: E402
from nnzip.train import TrainConfig, build_model, load_model, train  # noqa: E402

PRESET = "fast"
ARMS = {"gated": ["mlp=gated", "mlp_hidden=171"], "kan": ["mlp=kan", "kan_grid=4"]}
SEEDS = (0, 1)
SPEED_BYTES = 65536
MIN_SPEED_RATIO = 0.8


def seconds_per_step(overrides: list[str], probe_steps: int = 6) -> float:
    """Time training steps of the arm's model at the training batch shape (after one warm-up step)."""
    cfg = TrainConfig(preset=PRESET, overrides=overrides)
    model = build_model(build_config(PRESET, overrides))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    data = load_corpus("enwik8-train")
    rng = np.random.default_rng(0)
    times = []
    for _ in range(probe_steps + 1):
        inputs, targets = sample_windows(data, cfg.batch_size, cfg.seq_len, rng)
        started = time.perf_counter()
        loss = bpb_loss(model(torch.from_numpy(inputs)), torch.from_numpy(targets))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - started)
    return float(np.median(times[1:]))


def run(folder: Path, cfg: TrainConfig) -> None:
    config = folder / "config.json"
    if config.is_file():
        meta = json.loads(config.read_text())
        if meta["step"] == cfg.steps and meta["train"]["overrides"] == cfg.overrides and meta["train"]["seed"] == cfg.seed:
            return
    train(cfg, folder, progress=sys.stderr.isatty())


def score(folder: Path, data: bytes) -> dict:
    from nnzip.export import export_model

    model, meta = load_model(folder)
    model.set_qat(True)
    intmodel = export_model(model, load_corpus(meta["train"]["data"][0]), folder / "export.safetensors")
    blob = codec.compress(data, intmodel)
    sample = data[:SPEED_BYTES]
    started = time.perf_counter()
    codec.compress(sample, intmodel)
    speed = len(sample) / (time.perf_counter() - started)
    return {"exact_bpb": 8 * len(blob) / len(data), "compress_bytes_per_s": speed,
            "parameters": model.num_parameters(), "steps": meta["step"]}


def decide(results: dict[str, list[dict]]) -> dict:
    """Apply the keep-or-cut rule of docs/mlp.md."""
    mean = {arm: float(np.mean([r["exact_bpb"] for r in runs])) for arm, runs in results.items()}
    spread = max(max(r["exact_bpb"] for r in runs) - min(r["exact_bpb"] for r in runs) for runs in results.values())
    speed = {arm: float(np.mean([r["compress_bytes_per_s"] for r in runs])) for arm, runs in results.items()}
    better = mean["gated"] - mean["kan"] > spread
    fast_enough = speed["kan"] >= MIN_SPEED_RATIO * speed["gated"]
    return {"mean_bpb": mean, "spread": spread, "speed": speed, "kan_better": better,
            "kan_fast_enough": fast_enough, "winner": "kan" if better and fast_enough else "gated"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "mlp-ablation")
    parser.add_argument("--budget", type=float, default=600.0, help="training seconds per run")
    args = parser.parse_args()
    args.runs.mkdir(parents=True, exist_ok=True)

    plan_path = args.runs / "plan.json"
    if plan_path.is_file():
        plan = json.loads(plan_path.read_text())  # keep the step counts of a started ablation
    else:
        plan = {arm: {"seconds_per_step": seconds_per_step(overrides)} for arm, overrides in ARMS.items()}
        for arm in plan:
            plan[arm]["steps"] = max(1, int(args.budget / plan[arm]["seconds_per_step"]))
        plan_path.write_text(json.dumps(plan, indent=2))
    print(f"mlp_ablation: plan {plan}", file=sys.stderr)

    data = enwik8_split(find_shared_data() / "enwik8-head", "validation").tobytes()
    results: dict[str, list[dict]] = {}
    for arm, overrides in ARMS.items():
        for seed in SEEDS:
            folder = args.runs / f"{arm}-s{seed}"
            cfg = TrainConfig(preset=PRESET, overrides=overrides, seed=seed, steps=plan[arm]["steps"],
                              eval_every=plan[arm]["steps"])
            run(folder, cfg)
            results.setdefault(arm, []).append({"seed": seed, **score(folder, data)})

    decision = decide(results)
    summary = {"plan": plan, "runs": results, "decision": decision}
    (args.runs / "results.json").write_text(json.dumps(summary, indent=2))
    Ledger(RESULTS / "phase1.json").put("mlp_ablation", summary)
    for arm, runs in results.items():
        for r in runs:
            print(f"{arm} seed {r['seed']}: {r['steps']} steps, {r['parameters']:,} parameters, "
                  f"exact {r['exact_bpb']:.4f} bpb, {r['compress_bytes_per_s']:.0f} B/s")
    print(f"decision: keep {decision['winner']} ({decision})")


if __name__ == "__main__":
    main()
