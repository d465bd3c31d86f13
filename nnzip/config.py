"""Model configuration: presets, overrides and validation.

One `ModelConfig` is frozen into the training checkpoint, the integer export and (through the
model id) the `.nz` header, so no size is a hidden constant anywhere else.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

VOCAB_SIZE = 256  # byte-level: one output symbol per byte value
BOS = 256  # input id fed before the first byte of every stream, so the first byte has a context
INPUT_VOCAB = VOCAB_SIZE + 1


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "ssm"  # "ssm" (nnzip's model) or "transformer" (the float baseline, nnzip.transformer)
    d_model: int = 256  # width of the residual stream
    n_layer: int = 4
    expand: int = 2  # d_inner = expand * d_model
    headdim: int = 64  # channels per SSM head; n_heads = d_inner / headdim
    d_state: int = 32  # N, the state size per channel
    d_conv: int = 4  # width of the short causal convolution
    chunk_size: int = 64  # chunk length of the parallel (training) scan; no effect on results
    mlp: str = "none"  # MLP sub-block after each mixer: "none", "gated" or "kan"
    retrieval: str = "none"  # retriever feeding the head (nnzip.retrieval): "none", "history" or "history+index"
    mlp_hidden: int = 0  # hidden width of the gated MLP
    kan_grid: int = 0  # basis functions per input of the KAN MLP
    index: str = ""  # with "history+index": file name of the index, found next to the model file
    index_id: str = ""  # with "history+index": the index id (nnzip.index), 32 hex digits

    # Fields added after the first shipped models. The canonical JSON (part of the model id)
    # leaves them out at these defaults, so the ids of older exports do not change.
    LATER_FIELDS = {"mlp_hidden": 0, "kan_grid": 0, "index": "", "index_id": ""}
    INT_FIELDS = ("mlp_hidden", "kan_grid")

    @property
    def d_inner(self) -> int:
        return self.expand * self.d_model

    @property
    def n_heads(self) -> int:
        return self.d_inner // self.headdim

    @property
    def conv_dim(self) -> int:
        # The convolution runs over x, B and C together, as in Mamba-2.
        return self.d_inner + 2 * self.d_state

    def validate(self) -> None:
        """Raise ValueError naming the first field whose value cannot build a model."""
        positive = ["d_model", "n_layer", "expand", "headdim", "d_state", "d_conv", "chunk_size"]
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"config field {name} must be a positive integer, got {value!r}")
        if self.arch == "transformer":
            if self.d_model % self.headdim or self.headdim % 2:
                raise ValueError(
                    f"transformer d_model ({self.d_model}) must be a multiple of headdim ({self.headdim}), "
                    f"and headdim even for rotary positions"
                )
        elif self.arch == "ssm":
            if self.d_inner % self.headdim:
                raise ValueError(
                    f"d_inner ({self.d_inner}) must be a multiple of headdim ({self.headdim})"
                )
            # Integer matmul sums of int8 x int8 stay below 2**24 only for K <= 1024, which keeps
            # float32 kernels exact in any summation order (see docs/inference-spec.md).
            if max(self.d_model, self.d_inner) > 1024:
                raise ValueError(
                    f"d_model and d_inner must be <= 1024 for exact int8 matmuls, "
                    f"got d_model={self.d_model}, d_inner={self.d_inner}"
                )
        else:
            raise ValueError(f"unknown arch {self.arch!r}; expected 'ssm' or 'transformer'")
        if self.mlp not in ("none", "gated", "kan"):
            raise ValueError(f"unknown mlp {self.mlp!r}; expected 'none', 'gated' or 'kan'")
        for name in self.INT_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"config field {name} must be a non-negative integer, got {value!r}")
        if self.mlp == "gated" and not 1 <= self.mlp_hidden <= 1024:
            raise ValueError(f"the gated MLP needs 1 <= mlp_hidden <= 1024 (exact int8 matmuls), got {self.mlp_hidden}")
        if self.mlp == "kan" and not (self.kan_grid >= 2 and self.d_model * self.kan_grid <= 1024):
            raise ValueError(
                f"the KAN MLP needs kan_grid >= 2 and d_model * kan_grid <= 1024 (exact int8 matmuls), "
                f"got kan_grid={self.kan_grid}, d_model={self.d_model}"
            )
        if self.retrieval not in ("none", "history", "history+index"):
            raise ValueError(f"unknown retrieval {self.retrieval!r}; expected 'none', 'history' or 'history+index'")
        if self.retrieval != "none" and self.arch != "ssm":
            raise ValueError("retrieval is implemented for arch 'ssm' only")
        self.validate_index()

    def validate_index(self) -> None:
        if not isinstance(self.index, str) or not isinstance(self.index_id, str):
            raise ValueError(f"config fields index and index_id must be strings, got {self.index!r} and {self.index_id!r}")
        if self.retrieval != "history+index":
            if self.index or self.index_id:
                raise ValueError(
                    f"index {self.index!r} and index_id {self.index_id!r} are set, but retrieval {self.retrieval!r} reads no index"
                )
            return
        if not self.index or "/" in self.index or "\\" in self.index or self.index in (".", ".."):
            raise ValueError(f"retrieval 'history+index' needs index, a file name next to the model, got {self.index!r}")
        if len(self.index_id) != 32 or any(c not in "0123456789abcdef" for c in self.index_id):
            raise ValueError(f"index_id must be 32 lower-case hex digits, got {self.index_id!r}")

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        for name, default in self.LATER_FIELDS.items():
            if data[name] == default:
                del data[name]
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; known keys: {sorted(known)}")
        config = cls(**data)
        config.validate()
        return config


PRESETS: dict[str, ModelConfig] = {
    # 1.05M parameters, sized so that training reaches a useful model on a 2-core CPU in under an hour.
    "small": ModelConfig(d_model=192, n_layer=4, expand=2, headdim=48, d_state=32),
    # 0.27M parameters for level -1: about a quarter of small's arithmetic per byte, so that
    # the Rust engine codes faster than 50 KB/s on 2 cores.
    "fast": ModelConfig(d_model=128, n_layer=2, expand=2, headdim=32, d_state=16),
    # The reference scale of the design, 10.2M parameters; needs a GPU to train.
    "base": ModelConfig(d_model=512, n_layer=6, expand=2, headdim=64, d_state=64),
    # A few thousand parameters, for tests only.
    "tiny": ModelConfig(d_model=32, n_layer=2, expand=2, headdim=16, d_state=8, chunk_size=16),
}


# The transformer baseline of each preset: within 5% of its parameter count (1,050,368 against
# 1,048,544 for small; 271,168 against 275,824 for fast; 9.81M against 10.18M for base), with
# a 4x GELU MLP and heads of 32 or 40 channels.
TRANSFORMER_TWINS: dict[str, ModelConfig] = {
    "fast": ModelConfig(arch="transformer", d_model=96, n_layer=2, expand=4, headdim=32),
    "small": ModelConfig(arch="transformer", d_model=128, n_layer=5, expand=4, headdim=32),
    "base": ModelConfig(arch="transformer", d_model=400, n_layer=5, expand=4, headdim=40),
    "tiny": ModelConfig(arch="transformer", d_model=32, n_layer=1, expand=4, headdim=16),
}
ARCHS = ("ssm", "transformer")


def parse_override(text: str) -> tuple[str, object]:
    """Parse one `key=value` override; the value is read as JSON when it parses, else as a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise ValueError(f"invalid override {text!r}; expected key=value, e.g. d_model=128")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


def build_config(preset: str, overrides: list[str] | None = None, arch: str = "ssm") -> ModelConfig:
    """Return the preset's config (or its transformer twin) with `key=value` overrides applied, validated."""
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; expected one of {', '.join(ARCHS)}")
    presets = PRESETS if arch == "ssm" else TRANSFORMER_TWINS
    if preset not in presets:
        raise ValueError(f"unknown preset {preset!r}; expected one of {sorted(presets)}")
    data = dataclasses.asdict(presets[preset])
    for text in overrides or []:
        key, value = parse_override(text)
        data[key] = value
    return ModelConfig.from_dict(data)
