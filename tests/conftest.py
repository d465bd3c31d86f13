"""Shared fixtures: a tiny model trained once per session, its integer export and its data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from nnzip.data import find_shared_data

CORPUS_BYTES = 200_000  # bytes of text behind the tiny model: training, then validation
VALID_BYTES = 20_000  # the last bytes of the corpus, never trained on
TINY_STEPS = 300  # measured: about 4 s on one CPU thread, reaching about 4.6 bpb on enwik8
TINY_EVAL_EVERY = 100

WORDS = (
    "the of and to in is was that for on as with by he it at from his an were are which this "
    "be or has had first one their its new after who they have her she two been other when "
    "there all during into school time may years more most only over city some world would "
    "where later up such used many can state about national out known university united then "
    "made system number part between these while under both through"
).split()


def english_like_text(length: int, seed: int) -> bytes:
    """Return `length` bytes of sentences built from common English words, for machines without
    the shared enwik8 data."""
    rng = np.random.default_rng(seed)
    sentences = []
    size = 0
    while size < length:
        count = int(rng.integers(4, 16))
        words = [WORDS[int(i)] for i in rng.zipf(1.3, size=count) % len(WORDS)]
        sentence = " ".join(words).capitalize() + rng.choice([".", ".", ".", ",", "?"]) + " "
        if rng.random() < 0.1:
            sentence += "\n"
        sentences.append(sentence)
        size += len(sentence)
    return "".join(sentences).encode()[:length]


def load_corpus_bytes() -> bytes:
    shared = find_shared_data()
    if shared is not None:
        return (shared / "enwik8-head").read_bytes()[:CORPUS_BYTES]
    return english_like_text(CORPUS_BYTES, seed=0)


@dataclass(frozen=True)
class Corpus:
    """Training and held-out bytes of the tiny model, with the files that hold them."""

    train: bytes
    valid: bytes
    train_path: Path
    valid_path: Path


def pytest_configure(config: pytest.Config) -> None:
    # The test models are so small that a second torch thread only adds synchronization. On a
    # 2-core machine busy with another training process, a tiny training step measured 1.2 s
    # with two threads against 10 ms with one.
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    data = load_corpus_bytes()
    folder = tmp_path_factory.mktemp("corpus")
    train_bytes, valid_bytes = data[:-VALID_BYTES], data[-VALID_BYTES:]
    train_path, valid_path = folder / "train.txt", folder / "valid.txt"
    train_path.write_bytes(train_bytes)
    valid_path.write_bytes(valid_bytes)
    return Corpus(train_bytes, valid_bytes, train_path, valid_path)


@pytest.fixture(scope="session")
def tiny_config(corpus: Corpus):
    """TrainConfig of the session's tiny run; change fields with dataclasses.replace."""
    from nnzip.train import TrainConfig

    return TrainConfig(
        preset="tiny",
        steps=TINY_STEPS,
        batch_size=8,
        seq_len=64,
        eval_every=TINY_EVAL_EVERY,
        eval_windows=4,
        eval_len=256,
        qat_start=0.5,
        data=[str(corpus.train_path)],
        valid=str(corpus.valid_path),
        threads=1,
    )


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, tiny_config) -> Path:
    """Run directory of the tiny preset trained for TINY_STEPS steps, QAT on for the second half."""
    from nnzip.train import train

    run_dir = tmp_path_factory.mktemp("tiny-run")
    train(tiny_config, run_dir, progress=False)
    return run_dir


@pytest.fixture(scope="session")
def tiny_float_model(tiny_run: Path):
    """The float ByteSSM of the tiny run, in eval mode with QAT on as at the end of training."""
    from nnzip.train import load_model

    model, _ = load_model(tiny_run)
    model.set_qat(True)
    return model.eval()


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory, tiny_run: Path, corpus: Corpus) -> Path:
    """Integer export of the tiny run, made as `nnzip export` makes it."""
    from nnzip.export import export_model
    from nnzip.train import load_model

    model, _ = load_model(tiny_run)
    path = tmp_path_factory.mktemp("tiny-export") / "tiny.safetensors"
    export_model(model, np.frombuffer(corpus.train, np.uint8), path)
    return path


@pytest.fixture(scope="session")
def tiny_model(tiny_model_path: Path):
    from nnzip.intmodel import IntModel

    return IntModel.load(tiny_model_path)


@pytest.fixture(scope="session")
def other_model_path(tmp_path_factory: pytest.TempPathFactory, tiny_run: Path, corpus: Corpus) -> Path:
    """Export of the tiny run with one head weight changed, so its model id differs."""
    import torch

    from nnzip.export import export_model
    from nnzip.train import load_model

    model, _ = load_model(tiny_run)
    with torch.no_grad():
        model.head.weight[0, 0] += 0.25
    path = tmp_path_factory.mktemp("other-export") / "other.safetensors"
    export_model(model, np.frombuffer(corpus.train, np.uint8), path)
    return path


@pytest.fixture(scope="session")
def other_model(other_model_path: Path):
    from nnzip.intmodel import IntModel

    return IntModel.load(other_model_path)

