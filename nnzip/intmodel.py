"""The exported integer model: exact one-step inference over many streams, numpy only.

This is the reference implementation of docs/inference-spec.md. Every value that decides a
frequency is an integer computed by nnzip.fixedpoint, so the encoder and the decoder (and any
other implementation of the spec) get the same frequencies bit for bit. Torch is not needed.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnzip.coder import TOTAL as FREQ_TOTAL
from nnzip.config import VOCAB_SIZE, ModelConfig
from nnzip.errors import ModelLoadError
from nnzip.fixedpoint import INT8_MAX, clamp_int8, exact_matmul, requantize, rms_normalize
from nnzip.index import Index
from nnzip.retrieval import GATE_MAX, GATE_MIN, bucket_count, uses_index

EXPORT_FORMAT = "nnzip-int"
EXPORT_VERSION = 1

# Fixed-point constants of export version 1; the spec explains each bound.
GAIN_BITS = 16  # RMSNorm gains carry 16 fractional bits
DECAY_BITS = 20  # exp(Δ A) in Q20
DELTA_BITS = 16  # Δ in Q16
LOGIT_BITS = 6  # logits in units of 1/64 nat
RESIDUAL_LIMIT = (1 << 23) - 1  # the residual stream saturates at ±RESIDUAL_LIMIT
STATE_LIMIT = (1 << 24) - 1  # SSM state entries saturate at ±STATE_LIMIT
EXP_TABLE_LEN = 24 << LOGIT_BITS  # logits more than 24 nats below the top share the last entry
FREE_MASS = FREQ_TOTAL - VOCAB_SIZE
GATE_LOW, GATE_HIGH = GATE_MIN << LOGIT_BITS, GATE_MAX << LOGIT_BITS  # gate range in logit units


def table_lookup(table: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Look up int8 inputs q in [-127, 127] in a 255-entry table."""
    return table[q + INT8_MAX]


def frequencies_from_logits(logits: np.ndarray, exp_table: np.ndarray) -> np.ndarray:
    """Integer frequencies (b, 256) from fixed-point logits (b, 256), shared by encoder and decoder.

    Invariants: every frequency >= 1 and each row sums to exactly FREQ_TOTAL. With
    d = min(max(logits) - logits, len(exp_table) - 1) and e = exp_table[d] (e of the top byte is
    2**30), f = 1 + floor(e * FREE_MASS / sum(e)); the remainder FREQ_TOTAL - sum(f) >= 0 is
    added to the first byte with the largest logit.
    """
    top = logits.max(axis=-1, keepdims=True)
    distance = np.minimum(top - logits, len(exp_table) - 1)
    weights = exp_table[distance]  # (b, 256), each <= 2**30
    total = weights.sum(axis=-1, keepdims=True)
    freqs = 1 + (weights * FREE_MASS) // total
    remainder = FREQ_TOTAL - freqs.sum(axis=-1)
    rows = np.arange(len(freqs))
    freqs[rows, logits.argmax(axis=-1)] += remainder
    return freqs


def boost_logits(logits: np.ndarray, gate: np.ndarray, codes: np.ndarray, bias: np.ndarray,
                 softplus_table: np.ndarray) -> np.ndarray:
    """Add the retrieval boost to the logit of each code's predicted byte (docs/retrieval.md).

    With bucket b = code >> 8 > 0 and predicted byte p = code & 255:
    logit[p] += softplus_table[clamp(gate + bias[b], GATE_LOW, GATE_HIGH) - GATE_LOW].
    """
    bucket, predicted = codes >> 8, codes & 255
    z = np.clip(gate + bias[bucket], GATE_LOW, GATE_HIGH)
    boost = np.where(bucket > 0, softplus_table[z - GATE_LOW], 0)
    out = logits.copy()
    np.put_along_axis(out, predicted[..., None], np.take_along_axis(logits, predicted[..., None], -1) + boost[..., None], -1)
    return out


def load_model_index(path: Path, config: ModelConfig) -> Index | None:
    """Load the index that a model with retrieval "history+index" names, from the model's folder."""
    if not uses_index(config.retrieval):
        return None
    index_path = path.parent / config.index
    if not index_path.is_file():
        raise ModelLoadError(
            f"model {path} needs the index {config.index} (id {config.index_id}) next to it, but {index_path} "
            "does not exist; copy the index that shipped with the model there"
        )
    index = Index.load(index_path)
    if index.id.hex() != config.index_id:
        raise ModelLoadError(
            f"index {index_path} has id {index.id.hex()}, but model {path} was trained with index id {config.index_id}; "
            "copy the index that shipped with the model there"
        )
    return index


def model_id(config_json: str, tensors: dict[str, np.ndarray]) -> bytes:
    """Return the 32-byte sha256 of the config and tensors in canonical order (inference spec)."""
    digest = hashlib.sha256()
    digest.update(b"nnzip-model\n")
    digest.update(config_json.encode())
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        header = f"\n{name}\n{array.dtype.str}\n{list(array.shape)}\n"
        digest.update(header.encode())
        digest.update(array.astype(array.dtype.newbyteorder("<")).tobytes())
    return digest.digest()


def expected_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Shape of every tensor of an export of `config` (docs/inference-spec.md, "The file")."""
    c = config
    shapes: dict[str, tuple[int, ...]] = {
        "embedding": (VOCAB_SIZE + 1, c.d_model),
        "norm_f.gain": (c.d_model,),
        "head.weight": (VOCAB_SIZE, c.d_model),
        "head.multiplier": (VOCAB_SIZE,),
        "head.shift": (VOCAB_SIZE,),
        "head.exp_table": (EXP_TABLE_LEN,),
    }
    rows = 2 * c.d_inner + 2 * c.d_state + c.n_heads
    for i in range(c.n_layer):
        p = f"layers.{i}."
        shapes.update({
            p + "norm.gain": (c.d_model,),
            p + "in_proj.weight": (rows, c.d_model),
            p + "in_proj.multiplier": (rows,),
            p + "in_proj.shift": (rows,),
            p + "conv.weight": (c.conv_dim, c.d_conv),
            p + "conv.bias": (c.conv_dim,),
            p + "conv.multiplier": (c.conv_dim,),
            p + "conv.shift": (c.conv_dim,),
            p + "silu_table": (2 * INT8_MAX + 1,),
            p + "gate_table": (2 * INT8_MAX + 1,),
            p + "delta_table": (c.n_heads, 2 * INT8_MAX + 1),
            p + "decay_table": (c.n_heads, 2 * INT8_MAX + 1),
            p + "D": (c.n_heads,),
            p + "out_proj.weight": (c.d_model, c.d_inner),
            p + "out_proj.multiplier": (c.d_model,),
            p + "out_proj.shift": (c.d_model,),
        })
        for name in ("ssm.input_", "y.c_", "y.d_", "gate."):
            shapes[p + name + "multiplier"] = (1,)
            shapes[p + name + "shift"] = (1,)
        shapes.update(mlp_shapes(c, p))
    if c.retrieval != "none":
        shapes.update({
            "retrieval.gate.weight": (1, c.d_model),
            "retrieval.gate.multiplier": (1,),
            "retrieval.gate.shift": (1,),
            "retrieval.bias": (bucket_count(c.retrieval),),
            "retrieval.softplus_table": (GATE_HIGH - GATE_LOW + 1,),
        })
    return shapes


def mlp_shapes(c: ModelConfig, p: str) -> dict[str, tuple[int, ...]]:
    """Shapes of the MLP tensors of layer prefix `p` (none without an MLP)."""
    if c.mlp == "none":
        return {}
    shapes: dict[str, tuple[int, ...]] = {p + "mlp_norm.gain": (c.d_model,)}
    if c.mlp == "gated":
        linears = {"mlp.up": (2 * c.mlp_hidden, c.d_model), "mlp.down": (c.d_model, c.mlp_hidden)}
        shapes[p + "mlp.gate_table"] = (2 * INT8_MAX + 1,)
        shapes[p + "mlp.gate.multiplier"] = (1,)
        shapes[p + "mlp.gate.shift"] = (1,)
    else:
        linears = {"mlp.proj": (c.d_model, c.d_model * c.kan_grid)}
        shapes[p + "mlp.basis_table"] = (c.kan_grid, 2 * INT8_MAX + 1)
    for name, shape in linears.items():
        shapes[p + name + ".weight"] = shape
        shapes[p + name + ".multiplier"] = (shape[0],)
        shapes[p + name + ".shift"] = (shape[0],)
    return shapes


def check_tensors(path: Path, config: ModelConfig, tensors: dict[str, np.ndarray]) -> None:
    """Raise ModelLoadError unless `tensors` has exactly the integer tensors of `config`."""
    expected = expected_shapes(config)
    missing = sorted(set(expected) - set(tensors))
    if missing:
        raise ModelLoadError(f"{path} lacks tensors {missing[:3]}{'...' if len(missing) > 3 else ''}")
    unknown = sorted(set(tensors) - set(expected))
    if unknown:
        raise ModelLoadError(f"{path} has unknown tensors {unknown[:3]}{'...' if len(unknown) > 3 else ''}")
    for name, shape in expected.items():
        if tensors[name].shape != shape:
            raise ModelLoadError(f"{path}: tensor {name} has shape {tensors[name].shape}, expected {shape}")
        if not np.issubdtype(tensors[name].dtype, np.integer):
            raise ModelLoadError(f"{path}: tensor {name} has dtype {tensors[name].dtype}, expected an integer type")


@dataclass
class IntState:
    """Recurrent state of a batch of streams: per layer conv window and SSM state, int64."""

    conv: list[np.ndarray]  # (b, conv_dim, K-1), oldest input first
    ssm: list[np.ndarray]  # (b, H, P, N)


class IntModel:
    """Integer-exact inference of an exported model (see docs/inference-spec.md)."""

    def __init__(self, config: ModelConfig, tensors: dict[str, np.ndarray], path: Path | None = None) -> None:
        self.config = config
        self.tensors = tensors
        self.path = path  # the export file, whose folder contains the index of retrieval "history+index"
        self.id = model_id(config.to_json(), tensors)
        self.t = {name: value.astype(np.int64) for name, value in tensors.items()}
        # float64 copies of the matmul weights, transposed to (K, M), for exact_matmul.
        self.weights_t = {
            name: value.astype(np.float64).T.copy()
            for name, value in self.t.items()
            if name.endswith(".weight") and not name.endswith("conv.weight")
        }

    @classmethod
    def load(cls, path: str | Path) -> IntModel:
        """Load an export written by nnzip.export; raise ModelLoadError on any problem."""
        from safetensors import SafetensorError
        from safetensors.numpy import load_file, safe_open

        path = Path(path)
        if not path.is_file():
            raise ModelLoadError(f"model file {path} not found")
        try:
            with safe_open(str(path), framework="numpy") as handle:
                metadata = handle.metadata() or {}
            tensors = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as err:
            raise ModelLoadError(
                f"cannot read model {path}: not a safetensors export ({err}); "
                "pass a file written by nnzip export or a shipped model name"
            ) from err
        if metadata.get("format") != EXPORT_FORMAT:
            raise ModelLoadError(f"{path} is not an nnzip integer export (format {metadata.get('format')!r})")
        version = metadata.get("version")
        if version != str(EXPORT_VERSION):
            raise ModelLoadError(f"{path} has export version {version}; this nnzip reads {EXPORT_VERSION}")
        try:
            config = ModelConfig.from_dict(json.loads(metadata["config"]))
        except (KeyError, ValueError, TypeError) as err:
            raise ModelLoadError(f"{path} has an invalid config: {err}") from err
        check_tensors(path, config, tensors)
        return cls(config, tensors, path)

    @functools.cached_property
    def index(self) -> Index | None:
        """The external index of retrieval "history+index", loaded at first use: finding a
        model by id among many does not pay for checking its index."""
        if not uses_index(self.config.retrieval):
            return None
        if self.path is None:
            raise ModelLoadError(f"this model reads index {self.config.index}, but it was not loaded from a file")
        return load_model_index(self.path, self.config)

    def initial_state(self, batch: int) -> IntState:
        c = self.config
        conv = [np.zeros((batch, c.conv_dim, c.d_conv - 1), np.int64) for _ in range(c.n_layer)]
        ssm = [np.zeros((batch, c.n_heads, c.headdim, c.d_state), np.int64) for _ in range(c.n_layer)]
        return IntState(conv=conv, ssm=ssm)

    def linear(self, name: str, q: np.ndarray) -> np.ndarray:
        """Requantized int8 matmul over the last axis: requantize(q @ W^T, multiplier, shift) per row."""
        lead = q.shape[:-1]
        acc = exact_matmul(q.reshape(-1, q.shape[-1]), self.weights_t[f"{name}.weight"])
        out = requantize(acc, self.t[f"{name}.multiplier"], self.t[f"{name}.shift"])
        return out.reshape(*lead, -1)

    def convolve(self, i: int, xbc: np.ndarray, state: IntState) -> np.ndarray:
        """Causal depthwise convolution of xbc (b, T, conv_dim) continuing the conv state."""
        t, p, K = self.t, f"layers.{i}.", self.config.d_conv
        T = xbc.shape[1]
        sequence = np.concatenate([state.conv[i], xbc.transpose(0, 2, 1)], axis=-1)  # (b, CD, K-1+T)
        state.conv[i] = sequence[:, :, T:]
        weight = t[p + "conv.weight"]
        acc = sum(sequence[:, :, k : k + T] * weight[:, k : k + 1] for k in range(K))  # (b, CD, T)
        acc = acc.transpose(0, 2, 1) + t[p + "conv.bias"]
        return clamp_int8(requantize(acc, t[p + "conv.multiplier"], t[p + "conv.shift"]))

    def scan(self, i: int, dt, xs, B, C, state: IntState) -> np.ndarray:
        """Run the SSM state over T positions; returns C h per position, (b, T, H, P).

        The state update is in place, since the state is the largest array. The input term is
        requantize(Δ x B, m, s); multiplying Δ x by m before B gives the same integers and stays
        below 2**57 (Δ x m < 2**50, |B| <= 127).
        """
        t, p, c = self.t, f"layers.{i}.", self.config
        heads = np.arange(c.n_heads)
        delta = t[p + "delta_table"][heads, dt + INT8_MAX]  # (b, T, H), Q16
        decay = t[p + "decay_table"][heads, dt + INT8_MAX]  # (b, T, H), Q20
        shift = int(t[p + "ssm.input_shift"][0])
        scaled = delta[..., None] * xs * t[p + "ssm.input_multiplier"][0]  # (b, T, H, P)
        Cf = C.astype(np.float64)
        h = state.ssm[i]
        out = np.empty(xs.shape, np.int64)
        for step in range(xs.shape[1]):
            h *= decay[:, step, :, None, None]
            h += 1 << (DECAY_BITS - 1)
            h >>= DECAY_BITS
            inc = scaled[:, step, :, :, None] * B[:, step, None, None, :]  # (b, H, P, N)
            inc += 1 << (shift - 1)
            inc >>= shift
            h += inc
            np.clip(h, -STATE_LIMIT, STATE_LIMIT, out=h)
            # Exact in float64: |h| < 2**24, |C| <= 127 and N <= 64 keep the sum below 2**38.
            out[:, step] = np.einsum("bhpn,bn->bhp", h.astype(np.float64), Cf[:, step])
        return out

    def mixer_block(self, i: int, x: np.ndarray, state: IntState) -> np.ndarray:
        """Advance layer i by T positions; x (b, T, D) residual -> (b, T, D) residual."""
        c, t, p = self.config, self.t, f"layers.{i}."
        b, T, _ = x.shape

        # Norm and input projection into the gate z, the conv input and dt.
        u = rms_normalize(x, t[p + "norm.gain"], GAIN_BITS)
        zxbcdt = clamp_int8(self.linear(p + "in_proj", u))
        z, xbc, dt = np.split(zxbcdt, [c.d_inner, c.d_inner + c.conv_dim], axis=-1)

        # Short causal convolution, SiLU by table, and the selective scan.
        xbc = table_lookup(t[p + "silu_table"], self.convolve(i, xbc, state))
        xs, B, C = np.split(xbc, [c.d_inner, c.d_inner + c.d_state], axis=-1)
        xs = xs.reshape(b, T, c.n_heads, c.headdim)
        ch = self.scan(i, dt, xs, B, C, state)

        # Output: C h plus the D skip, gated by SiLU(z), projected back to the residual.
        y = requantize(ch, t[p + "y.c_multiplier"], t[p + "y.c_shift"])
        skip = t[p + "D"][:, None] * xs
        y = clamp_int8(y + requantize(skip, t[p + "y.d_multiplier"], t[p + "y.d_shift"]))
        gate = table_lookup(t[p + "gate_table"], z)
        gated = y.reshape(b, T, c.d_inner) * gate
        out = clamp_int8(requantize(gated, t[p + "gate.multiplier"], t[p + "gate.shift"]))
        residual = x + self.linear(p + "out_proj", out)
        return np.clip(residual, -RESIDUAL_LIMIT, RESIDUAL_LIMIT)

    def mlp_block(self, i: int, x: np.ndarray) -> np.ndarray:
        """Add layer i's MLP to the residual x (b, T, D); row-wise, so it has no state."""
        c, t, p = self.config, self.t, f"layers.{i}."
        u = rms_normalize(x, t[p + "mlp_norm.gain"], GAIN_BITS)
        if c.mlp == "gated":
            a, g = np.split(clamp_int8(self.linear(p + "mlp.up", u)), [c.mlp_hidden], axis=-1)
            gated = a * table_lookup(t[p + "mlp.gate_table"], g)
            hidden = clamp_int8(requantize(gated, t[p + "mlp.gate.multiplier"], t[p + "mlp.gate.shift"]))
            out = self.linear(p + "mlp.down", hidden)
        else:
            # Basis values by table, laid out input-major: feature i * G + k is phi_k(u_i).
            table = t[p + "mlp.basis_table"]  # (G, 255)
            features = table[:, u + INT8_MAX]  # (G, b, T, D)
            features = np.moveaxis(features, 0, -1).reshape(*u.shape[:-1], -1)
            out = self.linear(p + "mlp.proj", features)
        return np.clip(x + out, -RESIDUAL_LIMIT, RESIDUAL_LIMIT)

    def block(self, ids: np.ndarray, state: IntState, codes: np.ndarray | None = None) -> np.ndarray:
        """Feed T input ids per stream (b, T); return the frequencies after each, (b, T, 256).

        Every operation but the state recurrence is row-wise, so a block of T positions gives
        exactly the integers of T single steps. The encoder, which has all bytes in advance, uses blocks.
        `codes` (b, T) are the retriever's codes of the predicted bytes (none: no match anywhere).
        """
        logits, gate = self.block_logits(ids, state)
        return self.frequencies(logits, gate, codes)

    def block_logits(self, ids: np.ndarray, state: IntState) -> tuple[np.ndarray, np.ndarray | None]:
        """Feed ids (b, T); return the logits (b, T, 256) and, with retrieval, the gate (b, T)."""
        x = self.t["embedding"][ids]
        for i in range(self.config.n_layer):
            x = self.mixer_block(i, x, state)
            if self.config.mlp != "none":
                x = self.mlp_block(i, x)
        u = rms_normalize(x, self.t["norm_f.gain"], GAIN_BITS)
        logits = self.linear("head", u)
        gate = self.linear("retrieval.gate", u)[..., 0] if self.config.retrieval != "none" else None
        return logits, gate

    def frequencies(self, logits: np.ndarray, gate: np.ndarray | None, codes: np.ndarray | None) -> np.ndarray:
        """Return the frequencies (..., 256) of logits (..., 256) after the retrieval boost."""
        if gate is not None and codes is not None:
            logits = boost_logits(logits, gate, codes, self.t["retrieval.bias"], self.t["retrieval.softplus_table"])
        lead = logits.shape[:-1]
        freqs = frequencies_from_logits(logits.reshape(-1, VOCAB_SIZE), self.t["head.exp_table"])
        return freqs.reshape(*lead, VOCAB_SIZE)

    def step(self, ids: np.ndarray, state: IntState, codes: np.ndarray | None = None) -> np.ndarray:
        """Feed one input id per stream (b,) and return next-byte frequencies (b, 256)."""
        return self.block(ids[:, None], state, None if codes is None else codes[:, None])[:, 0]
