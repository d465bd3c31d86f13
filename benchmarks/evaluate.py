"""Validation bpb of a model: float (from a training run) and exact (a real .nz file), next to
gzip -9, bzip2 -9 and xz -9e on the same bytes.

Usage:
    python benchmarks/evaluate.py --model models/nnzip-small-v1.safetensors [--run runs/small] [--bytes N]

The exact number is the size of the `.nz` file that `nnzip compress` writes (header included),
after a verified round trip. The float number runs the float model (with its fake quantizers,
as trained) on the same streams, so the two differ only by the integer export.
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import json
import lzma
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nnzip import codec  # noqa: E402
from nnzip.config import BOS  # noqa: E402
from nnzip.data import enwik8_split, find_shared_data  # noqa: E402
from nnzip.models import load_model  # noqa: E402


def float_bpb(run: Path, data: bytes) -> float:
    """Bits per byte of the float model on the streams the codec would use for `data`."""
    import torch

    from nnzip.objective import bpb_loss
    from nnzip.train import load_model as load_run

    model, _ = load_run(run)
    model.set_qat(True)
    model.eval()
    view = np.frombuffer(data, np.uint8).astype(np.int64)
    bits, start = 0.0, 0
    with torch.no_grad():
        for length in codec.stream_lengths(len(view)):
            target = view[start : start + length]
            ids = np.concatenate([[BOS], target[:-1]])
            logits = model(torch.from_numpy(ids)[None])
            bits += bpb_loss(logits, torch.from_numpy(target)[None]).item() * length
            start += length
    return bits / len(view)


def classic_sizes(data: bytes) -> dict[str, int]:
    return {
        "gzip -9": len(gzip.compress(data, 9, mtime=0)),
        "bzip2 -9": len(bz2.compress(data, 9)),
        "xz -9e": len(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="exported model (default: the shipped default)")
    parser.add_argument("--run", type=Path, default=None, help="training run for the float bpb")
    parser.add_argument("--bytes", type=int, default=0, help="use only the first N validation bytes")
    args = parser.parse_args()

    shared = find_shared_data()
    if shared is None:
        sys.exit("evaluate.py: the shared data folder with enwik8-head was not found")
    data = enwik8_split(shared / "enwik8-head", "validation").tobytes()
    if args.bytes:
        data = data[: args.bytes]

    model = load_model(args.model)
    started = time.perf_counter()
    blob = codec.compress(data, model)
    compress_seconds = time.perf_counter() - started
    started = time.perf_counter()
    restored = codec.decompress(blob, model)
    decompress_seconds = time.perf_counter() - started
    if restored != data:
        sys.exit("evaluate.py: round trip failed")

    report = {
        "bytes": len(data),
        "model_id": model.id[:16].hex(),
        "exact_bpb": 8 * len(blob) / len(data),
        "compress_bytes_per_s": len(data) / compress_seconds,
        "decompress_bytes_per_s": len(data) / decompress_seconds,
    }
    if args.run:
        report["float_bpb"] = float_bpb(args.run, data)
        report["export_loss_pct"] = 100 * (report["exact_bpb"] / report["float_bpb"] - 1)
    for name, size in classic_sizes(data).items():
        report[f"{name} bpb"] = 8 * size / len(data)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
