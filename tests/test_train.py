import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed
from safetensors.torch import load_file

from nnzip.config import PRESETS
from nnzip.train import TrainConfig, learning_rate, train

REPO_ROOT = Path(__file__).resolve().parent.parent
CHECKPOINT_FILES = ["model.safetensors", "config.json", "trainer_state.pt"]


def saved_step(run_dir: Path) -> int:
    return json.loads((run_dir / "config.json").read_text())["step"]


def short_config(tiny_config: TrainConfig, **changes) -> TrainConfig:
    return dataclasses.replace(tiny_config, **{"steps": 6, "eval_every": 3, **changes})


@pytest.mark.parametrize("name", CHECKPOINT_FILES)
def test_checkpoint_files(tiny_run, name):
    assert (tiny_run / name).is_file()


def test_checkpoint_config(tiny_run, tiny_config):
    meta = json.loads((tiny_run / "config.json").read_text())
    assert meta["step"] == tiny_config.steps
    assert meta["model"] == dataclasses.asdict(PRESETS["tiny"])
    assert meta["train"]["seed"] == tiny_config.seed


def test_no_temporary_files(tiny_run):
    assert list(tiny_run.glob("*.tmp")) == []


def test_resume_continues(tmp_path, capsys, tiny_run, tiny_config):
    run_dir = tmp_path / "resumed"
    shutil.copytree(tiny_run, run_dir)
    before = load_file(str(run_dir / "model.safetensors"))
    seconds_before = json.loads((run_dir / "config.json").read_text())["seconds"]
    more_steps = tiny_config.steps + 20

    result = train(dataclasses.replace(tiny_config, steps=more_steps), run_dir, resume=True, progress=False)

    after = load_file(str(run_dir / "model.safetensors"))
    log = capsys.readouterr().err
    assert f"step {tiny_config.eval_every} " not in log, "resumed training started again from step 0"
    assert f"step {more_steps} " in log
    assert saved_step(run_dir) == more_steps
    assert torch.load(run_dir / "trainer_state.pt", weights_only=True)["step"] == more_steps
    assert not torch.equal(before["head.weight"], after["head.weight"]), "resumed training changed nothing"
    # The training time covers both parts, so a resumed run reports its whole cost.
    assert seconds_before > 0
    assert result["seconds"] > seconds_before
    assert json.loads((run_dir / "config.json").read_text())["seconds"] > seconds_before


def test_same_seed_same_weights(tmp_path, tiny_config):
    first, second = tmp_path / "first", tmp_path / "second"
    train(short_config(tiny_config), first, progress=False)
    train(short_config(tiny_config), second, progress=False)

    first_weights = load_file(str(first / "model.safetensors"))
    second_weights = load_file(str(second / "model.safetensors"))
    assert sorted(first_weights) == sorted(second_weights)
    different = [name for name in first_weights if not torch.equal(first_weights[name], second_weights[name])]
    assert different == []


def test_other_seed_other_weights(tmp_path, tiny_config):
    first, second = tmp_path / "first", tmp_path / "second"
    train(short_config(tiny_config), first, progress=False)
    train(short_config(tiny_config, seed=1), second, progress=False)

    first_weights = load_file(str(first / "model.safetensors"))
    second_weights = load_file(str(second / "model.safetensors"))
    assert not torch.equal(first_weights["head.weight"], second_weights["head.weight"])


SCHEDULE = TrainConfig(steps=1000, warmup=100, lr=1e-3, min_lr=1e-5)


def test_learning_rate_warmup():
    rates = [learning_rate(SCHEDULE, step) for step in range(SCHEDULE.warmup)]
    assert rates[0] == pytest.approx(SCHEDULE.lr / SCHEDULE.warmup)
    assert all(a < b for a, b in zip(rates, rates[1:]))
    assert rates[-1] == pytest.approx(SCHEDULE.lr)


def test_learning_rate_decay():
    rates = [learning_rate(SCHEDULE, step) for step in range(SCHEDULE.warmup, SCHEDULE.steps + 1)]
    assert rates[0] == pytest.approx(SCHEDULE.lr)
    assert all(a >= b for a, b in zip(rates, rates[1:]))
    assert rates[-1] == pytest.approx(SCHEDULE.min_lr)


def test_learning_rate_cosine_midpoint():
    middle = SCHEDULE.warmup + (SCHEDULE.steps - SCHEDULE.warmup) // 2
    expected = (SCHEDULE.lr + SCHEDULE.min_lr) / 2
    assert learning_rate(SCHEDULE, middle) == pytest.approx(expected)


def test_learning_rate_after_end():
    assert learning_rate(SCHEDULE, SCHEDULE.steps + 50) == pytest.approx(SCHEDULE.min_lr)


@pytest.mark.skipif(not torch.distributed.is_available(), reason="this torch build has no torch.distributed")
def test_ddp_two_processes(tmp_path, corpus):
    out = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "nnzip", "train", "--preset", "tiny", "--steps", "4", "--batch-size", "4", "--seq-len", "64",
        "--eval-every", "2", "--data", str(corpus.train_path), "--valid", str(corpus.valid_path),
        "--out", str(out), "--quiet",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}

    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)

    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 process(es)" in result.stderr
    for name in CHECKPOINT_FILES:
        assert (out / name).is_file(), f"{name} missing"
    assert saved_step(out) == 4


@pytest.mark.parametrize("steps", [0, -5])
def test_nonpositive_steps_rejected(tmp_path, tiny_config, steps):
    with pytest.raises(ValueError, match="steps must be at least 1"):
        train(dataclasses.replace(tiny_config, steps=steps), tmp_path / "run", progress=False)

    assert not (tmp_path / "run").exists()
