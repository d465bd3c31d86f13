"""Training loop: bits-per-byte objective, quantization-aware final phase, checkpoints, resume, DDP.

Run with `nnzip train`; under `torchrun --nproc_per_node N` each process trains on its own
random windows and gradients are averaged by DistributedDataParallel (gloo on CPU, nccl on GPU).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file

from nnzip.config import ModelConfig, build_config, parse_override
from nnzip.data import enwik8_split, find_shared_data, load_corpus, sample_windows, validation_windows
from nnzip.errors import NNZipError
from nnzip.index import Index
from nnzip.model import ByteSSM
from nnzip.objective import bpb_loss

CHECKPOINT_WEIGHTS = "model.safetensors"
CHECKPOINT_CONFIG = "config.json"
CHECKPOINT_TRAINER = "trainer_state.pt"


@dataclass
class TrainConfig:
    preset: str = "small"
    arch: str = "ssm"  # "transformer" trains the preset's same-size transformer baseline
    overrides: list[str] = field(default_factory=list)  # model config overrides, key=value
    data: list[str] = field(default_factory=lambda: ["enwik8-train"])
    valid: str = "enwik8-valid"  # "enwik8-valid", a file, or "" for no validation
    steps: int = 1500
    batch_size: int = 32  # windows per step and per process
    seq_len: int = 256  # bytes per window
    lr: float = 2e-3
    min_lr: float = 1e-4
    warmup: int = 100
    weight_decay: float = 0.01
    qat_start: float = 0.6  # fraction of steps after which fake quantization is on
    eval_every: int = 250
    eval_windows: int = 64  # validation windows of eval_len bytes
    eval_len: int = 1024
    seed: int = 0
    threads: int = 0  # torch CPU threads per process; 0 keeps torch's default
    index: str = ""  # index file (nnzip.index) for retrieval "history+index"


def build_model(config: ModelConfig) -> torch.nn.Module:
    """Build the network of `config.arch`: ByteSSM, or the ByteTransformer baseline."""
    if config.arch == "transformer":
        from nnzip.transformer import ByteTransformer

        return ByteTransformer(config)
    return ByteSSM(config)


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """Linear warmup, then cosine decay from lr to min_lr over the remaining steps."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))


def qat_enabled(cfg: TrainConfig, step: int) -> bool:
    return step >= int(cfg.qat_start * cfg.steps)


def load_validation(spec: str) -> np.ndarray | None:
    if not spec:
        return None
    if spec == "enwik8-valid":
        shared = find_shared_data()
        if shared is None:
            raise NNZipError("validation set 'enwik8-valid' needs the shared data folder; pass --valid FILE")
        return enwik8_split(shared / "enwik8-head", "validation")
    return np.frombuffer(Path(spec).read_bytes(), dtype=np.uint8)


def retrieval_codes(model: ByteSSM, data: np.ndarray | None, index: Index | None = None) -> np.ndarray | None:
    """Return the retriever's code of every byte of `data`, as the codec computes them when it
    compresses `data` as one file, or None for a model without retrieval."""
    kind = getattr(model.config, "retrieval", "none")
    if data is None or kind == "none":
        return None
    from nnzip.members import BLOCK_SIZE
    from nnzip.retrieval import corpus_codes

    return corpus_codes(kind, data, BLOCK_SIZE, index)


def load_index(cfg: TrainConfig, overrides: list[str], resume: bool) -> Index | None:
    """Load the index of --index and name it in the model config through `overrides`."""
    kind = "none"
    for text in cfg.overrides:
        key, value = parse_override(text)
        kind = value if key == "retrieval" else kind
    if not resume and cfg.index and kind != "history+index":
        raise ValueError("--index needs --set retrieval=history+index")
    if not resume and kind == "history+index" and not cfg.index:
        raise ValueError("--set retrieval=history+index needs --index FILE.nzi; build one with nnzip index build")
    if not cfg.index:
        return None
    index = Index.load(cfg.index)
    overrides += [f"index={Path(cfg.index).name}", f"index_id={index.id.hex()}"]
    return index


def check_index(config: ModelConfig, index: Index | None) -> None:
    """Raise ValueError unless `index` is the one the model config names."""
    if config.retrieval != "history+index":
        if index is not None:
            raise ValueError(f"--index is given, but retrieval is {config.retrieval!r}; add --set retrieval=history+index")
        return
    if index is None:
        raise ValueError(f"retrieval 'history+index' needs --index, the index {config.index} (id {config.index_id})")
    if index.id.hex() != config.index_id:
        raise ValueError(f"--index has id {index.id.hex()}, but the model was set up with index id {config.index_id}")


@torch.no_grad()
def evaluate(model: ByteSSM, data: np.ndarray, cfg: TrainConfig, codes: np.ndarray | None = None) -> float:
    """Bits per byte of the quantized distribution on fixed validation windows."""
    was_training = model.training
    model.eval()
    windows = validation_windows(data, cfg.eval_windows, min(cfg.eval_len, len(data)), codes)
    inputs, targets = windows[0], windows[1]
    total = 0.0
    for i in range(0, len(inputs), 16):
        x = torch.from_numpy(inputs[i : i + 16])
        y = torch.from_numpy(targets[i : i + 16])
        c = torch.from_numpy(windows[2][i : i + 16]) if codes is not None else None
        total += bpb_loss(model(x, c) if c is not None else model(x), y).item() * y.numel()
    model.train(was_training)
    return total / targets.size


def save_checkpoint(run_dir: Path, model: ByteSSM, optimizer, step: int, cfg: TrainConfig, seconds: float = 0.0) -> None:
    """Write weights (safetensors), the JSON config and the optimizer state; rename when complete.

    `seconds` is the training time up to `step`, summed over resumed parts.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(run_dir / (CHECKPOINT_WEIGHTS + ".tmp")), metadata={"step": str(step)})
    meta = {"model": dataclasses.asdict(model.config), "train": dataclasses.asdict(cfg), "step": step,
            "seconds": round(seconds, 1)}
    (run_dir / (CHECKPOINT_CONFIG + ".tmp")).write_text(json.dumps(meta, indent=2) + "\n")
    torch.save({"optimizer": optimizer.state_dict(), "step": step}, run_dir / (CHECKPOINT_TRAINER + ".tmp"))
    for name in (CHECKPOINT_WEIGHTS, CHECKPOINT_CONFIG, CHECKPOINT_TRAINER):
        os.replace(run_dir / (name + ".tmp"), run_dir / name)


def load_model(run_dir: Path) -> tuple[ByteSSM, dict]:
    """Load a float model and its saved metadata from a run directory."""
    meta_path = Path(run_dir) / CHECKPOINT_CONFIG
    if not meta_path.is_file():
        raise NNZipError(f"{run_dir} is not a training run: {CHECKPOINT_CONFIG} not found")
    meta = json.loads(meta_path.read_text())
    model = build_model(ModelConfig.from_dict(meta["model"]))
    model.load_state_dict(load_file(str(Path(run_dir) / CHECKPOINT_WEIGHTS)))
    return model, meta


def setup_distributed() -> tuple[int, int]:
    """Join the process group when launched by torchrun; return (rank, world size)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend=backend)
    return dist.get_rank(), world


def log(rank: int, message: str) -> None:
    if rank == 0:
        print(f"nnzip: {message}", file=sys.stderr, flush=True)


def train(cfg: TrainConfig, run_dir: Path, resume: bool = False, progress: bool = True) -> dict:
    """Train a model into `run_dir`; returns a summary with the final validation bpb."""
    for name in ("steps", "batch_size", "seq_len", "eval_every"):
        value = getattr(cfg, name)
        if value < 1:
            raise ValueError(f"{name.replace('_', '-')} must be at least 1, got {value}")
    rank, world = setup_distributed()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng([cfg.seed, rank])

    # Data: every process reads the same corpus and draws its own windows.
    corpus = np.concatenate([load_corpus(spec) for spec in cfg.data])
    valid = load_validation(cfg.valid)

    # Model and optimizer, restored from the run directory when resuming.
    start, earlier_seconds = 0, 0.0
    overrides = list(cfg.overrides)
    index = load_index(cfg, overrides, resume)
    if resume:
        model, meta = load_model(run_dir)
        start, earlier_seconds = meta["step"], meta.get("seconds", 0.0)
    else:
        model = build_model(build_config(cfg.preset, overrides, cfg.arch))
    check_index(model.config, index)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(0.9, 0.95),
    )
    if resume:
        trainer = torch.load(run_dir / CHECKPOINT_TRAINER, weights_only=True)
        optimizer.load_state_dict(trainer["optimizer"])
        rng = np.random.default_rng([cfg.seed, rank, start])
    wrapped = model
    if world > 1:
        wrapped = torch.nn.parallel.DistributedDataParallel(model)
    log(rank, f"model {model.num_parameters():,} parameters, {len(corpus):,} training bytes, {world} process(es)")
    corpus_codes, valid_codes = retrieval_codes(model, corpus, index), retrieval_codes(model, valid, index)

    bar = None
    if progress and rank == 0:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=start, desc="train", unit="step", file=sys.stderr)
    valid_bpb = float("nan")
    started = time.time()
    model.train()
    for step in range(start, cfg.steps):
        model.set_qat(qat_enabled(cfg, step))
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(cfg, step)

        if corpus_codes is None:
            inputs, targets = sample_windows(corpus, cfg.batch_size, cfg.seq_len, rng)
            logits = wrapped(torch.from_numpy(inputs))
        else:
            inputs, targets, codes = sample_windows(corpus, cfg.batch_size, cfg.seq_len, rng, corpus_codes)
            logits = wrapped(torch.from_numpy(inputs), torch.from_numpy(codes))
        loss = bpb_loss(logits, torch.from_numpy(targets))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

        if bar is not None:
            bar.update(1)
            bar.set_postfix(bpb=f"{loss.item():.3f}")
        last = step + 1 == cfg.steps
        if (step + 1) % cfg.eval_every == 0 or last:
            if valid is not None:
                valid_bpb = evaluate(model, valid, cfg, valid_codes)
            elapsed = time.time() - started
            log(rank, f"step {step + 1} train_bpb {loss.item():.4f} valid_bpb {valid_bpb:.4f} "
                f"qat {int(qat_enabled(cfg, step))} elapsed {elapsed:.0f}s")
            if rank == 0:
                save_checkpoint(run_dir, model, optimizer, step + 1, cfg, earlier_seconds + elapsed)
    if bar is not None:
        bar.close()
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return {"valid_bpb": valid_bpb, "steps": cfg.steps, "seconds": earlier_seconds + time.time() - started}
