"""Export a trained float model to the integer form that nnzip.intmodel runs exactly.

Weights become int8 with one scale per output row; every activation scale comes from the
fake quantizer that trained it; nonlinearities become tables over int8 inputs; scale changes
become integer (multiplier, shift) pairs. Float maths (libm included) happens only here,
once: everything it produces is stored as integers in the export file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file

from nnzip.config import BOS
from nnzip.intmodel import (
    DECAY_BITS,
    DELTA_BITS,
    EXP_TABLE_LEN,
    EXPORT_FORMAT,
    EXPORT_VERSION,
    GAIN_BITS,
    LOGIT_BITS,
    RESIDUAL_LIMIT,
    STATE_LIMIT,
    IntModel,
    model_id,
)
from nnzip.model import BASIS_SCALE, DT_MAX, QMAX, ByteSSM, KANMLP
from nnzip.retrieval import GATE_MAX, GATE_MIN

MULTIPLIER_BITS = 24  # multipliers lie in [2**23, 2**24], so value * multiplier fits int64
RESIDUAL_HEADROOM = 8  # calibrated max |residual| maps to RESIDUAL_LIMIT / 8
STATE_HEADROOM = 8  # calibrated max |state| maps to STATE_LIMIT / 8
INT8_GRID = np.arange(-QMAX, QMAX + 1, dtype=np.float64)  # inputs of every 255-entry table


def round_half_up(x: np.ndarray) -> np.ndarray:
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5)


def multiplier_and_shift(real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer (multiplier, shift) with multiplier / 2**shift ~= real, per element."""
    real = np.atleast_1d(np.asarray(real, dtype=np.float64))
    if np.any(real < 0) or not np.all(np.isfinite(real)):
        raise ValueError(f"scale ratios must be finite and >= 0, got min {real.min()}")
    safe = np.where(real > 0, real, 1.0)
    shift = (MULTIPLIER_BITS - 1) - np.floor(np.log2(safe)).astype(np.int64)
    multiplier = round_half_up(safe * np.exp2(shift.astype(np.float64))).astype(np.int64)
    too_small = (shift > 62) | (real == 0)
    multiplier[too_small], shift[too_small] = 0, 1
    if np.any(shift < 1):
        raise ValueError(f"scale ratio {real.max():.3g} is too large for the integer path")
    return multiplier, shift


def quantize_rows(weight: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per output row, as QLinear fake-quantizes; returns (int8 values, scales)."""
    w = weight.detach().double().numpy()
    scale = np.maximum(np.abs(w).max(axis=1), 1e-8) / QMAX
    return np.clip(round_half_up(w / scale[:, None]), -QMAX, QMAX).astype(np.int16), scale


def act_scale(quantizer) -> float:
    return max(float(quantizer.amax), 1e-6) / QMAX


def silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


def int8_table(fn, in_scale: float, out_scale: float) -> np.ndarray:
    return np.clip(round_half_up(fn(INT8_GRID * in_scale) / out_scale), -QMAX, QMAX).astype(np.int16)


@torch.no_grad()
def calibrate(model: ByteSSM, data: np.ndarray, streams: int = 8, length: int = 512) -> dict:
    """Run the float one-step form on training bytes; return max |residual| and max |state| per layer."""
    model.eval()
    starts = np.linspace(0, len(data) - length, streams).astype(np.int64)
    windows = np.stack([data[s : s + length] for s in starts]).astype(np.int64)
    ids = np.concatenate([np.full((streams, 1), BOS), windows[:, :-1]], axis=1)
    state = model.initial_state(streams)
    residual_max = 0.0
    state_max = [0.0] * len(model.layers)
    for t in range(length):
        x = model.embedding(torch.from_numpy(ids[:, t]))
        residual_max = max(residual_max, x.abs().max().item())
        for i, layer in enumerate(model.layers):
            x, state.conv[i], state.ssm[i] = layer.step(x, state.conv[i], state.ssm[i])
            residual_max = max(residual_max, x.abs().max().item())
            state_max[i] = max(state_max[i], state.ssm[i].abs().max().item())
    return {"residual": residual_max, "state": state_max}


def export_layer(i: int, layer, s_res: float, state_max: float) -> dict[str, np.ndarray]:
    """Integer tensors of one residual block, named `layers.{i}.*`."""
    m = layer.mixer
    c = m.config
    p = f"layers.{i}."
    s_in, s_z, s_xbc, s_dt = (act_scale(q) for q in (m.in_act, m.z_act, m.xbc_act, m.dt_act))
    s_conv, s_ssm, s_gate = act_scale(m.conv_act), act_scale(m.ssm_in_act), act_scale(m.gate_act)
    s_y, s_out = act_scale(m.y_act), act_scale(m.out_act)
    s_h = state_max * STATE_HEADROOM / STATE_LIMIT
    out: dict[str, np.ndarray] = {}

    # Norm gain and input projection; each output row requantizes to its group's scale.
    gain = layer.norm.weight.detach().double().numpy()
    out[p + "norm.gain"] = round_half_up(gain / s_in * 2**GAIN_BITS).astype(np.int64)
    w, s_w = quantize_rows(m.in_proj.weight)
    target = np.concatenate([np.full(c.d_inner, s_z), np.full(c.conv_dim, s_xbc), np.full(c.n_heads, s_dt)])
    out[p + "in_proj.weight"] = w
    out[p + "in_proj.multiplier"], out[p + "in_proj.shift"] = multiplier_and_shift(s_w * s_in / target)

    # Convolution with an integer bias at the accumulator's scale, then SiLU tables.
    cw = m.conv_weight.detach().double().numpy()
    s_cw = np.maximum(np.abs(cw).max(axis=1), 1e-8) / QMAX
    out[p + "conv.weight"] = np.clip(round_half_up(cw / s_cw[:, None]), -QMAX, QMAX).astype(np.int16)
    out[p + "conv.bias"] = round_half_up(m.conv_bias.detach().double().numpy() / (s_cw * s_xbc)).astype(np.int64)
    out[p + "conv.multiplier"], out[p + "conv.shift"] = multiplier_and_shift(s_cw * s_xbc / s_conv)
    out[p + "silu_table"] = int8_table(silu, s_conv, s_ssm)
    out[p + "gate_table"] = int8_table(silu, s_z, s_gate)

    # Δ and exp(Δ A) per head as tables over the int8 dt input.
    dt_bias = m.dt_bias.detach().double().numpy()[:, None]
    pre = INT8_GRID[None, :] * s_dt + dt_bias
    delta = np.minimum(np.logaddexp(0.0, pre), DT_MAX)  # softplus, clamped as in training
    rate = np.exp(m.A_log.detach().double().numpy())[:, None]
    out[p + "delta_table"] = round_half_up(delta * 2**DELTA_BITS).astype(np.int64)
    out[p + "decay_table"] = round_half_up(np.exp(-delta * rate) * 2**DECAY_BITS).astype(np.int64)
    out[p + "ssm.input_multiplier"], out[p + "ssm.input_shift"] = multiplier_and_shift(
        s_ssm * s_ssm / (2**DELTA_BITS * s_h)
    )

    # Output C h and the D skip, requantized to the y scale, then the gate.
    D = m.D.detach().double().numpy()
    s_D = max(np.abs(D).max(), 1e-8) / QMAX
    out[p + "D"] = np.clip(round_half_up(D / s_D), -QMAX, QMAX).astype(np.int16)
    out[p + "y.c_multiplier"], out[p + "y.c_shift"] = multiplier_and_shift(s_ssm * s_h / s_y)
    out[p + "y.d_multiplier"], out[p + "y.d_shift"] = multiplier_and_shift(s_D * s_ssm / s_y)
    out[p + "gate.multiplier"], out[p + "gate.shift"] = multiplier_and_shift(s_y * s_gate / s_out)

    # Output projection straight into the residual scale.
    w, s_w = quantize_rows(m.out_proj.weight)
    out[p + "out_proj.weight"] = w
    out[p + "out_proj.multiplier"], out[p + "out_proj.shift"] = multiplier_and_shift(s_w * s_out / s_res)
    if layer.mlp is not None:
        out.update(export_mlp(p, layer, s_res))
    return out


def export_mlp(p: str, layer, s_res: float) -> dict[str, np.ndarray]:
    """Integer tensors of a layer's MLP (gated or KAN), ending at the residual scale."""
    mlp = layer.mlp
    s_in = act_scale(mlp.in_act)
    gain = layer.mlp_norm.weight.detach().double().numpy()
    out = {p + "mlp_norm.gain": round_half_up(gain / s_in * 2**GAIN_BITS).astype(np.int64)}

    if isinstance(mlp, KANMLP):
        # One table per basis function over the int8 input; values on the fixed 1/127 grid.
        centers = mlp.centers.double().numpy()
        u = INT8_GRID * s_in
        phi = np.exp(-(((u[None, :] - centers[:, None]) / mlp.width) ** 2))
        out[p + "mlp.basis_table"] = np.clip(round_half_up(phi / BASIS_SCALE), 0, QMAX).astype(np.int16)
        w, s_w = quantize_rows(mlp.proj.weight)
        out[p + "mlp.proj.weight"] = w
        out[p + "mlp.proj.multiplier"], out[p + "mlp.proj.shift"] = multiplier_and_shift(s_w * BASIS_SCALE / s_res)
        return out

    s_a, s_g, s_gate, s_out = (act_scale(q) for q in (mlp.a_act, mlp.g_act, mlp.gate_act, mlp.out_act))
    w, s_w = quantize_rows(mlp.up.weight)
    target = np.concatenate([np.full(mlp.hidden, s_a), np.full(mlp.hidden, s_g)])
    out[p + "mlp.up.weight"] = w
    out[p + "mlp.up.multiplier"], out[p + "mlp.up.shift"] = multiplier_and_shift(s_w * s_in / target)
    out[p + "mlp.gate_table"] = int8_table(silu, s_g, s_gate)
    out[p + "mlp.gate.multiplier"], out[p + "mlp.gate.shift"] = multiplier_and_shift(s_a * s_gate / s_out)
    w, s_w = quantize_rows(mlp.down.weight)
    out[p + "mlp.down.weight"] = w
    out[p + "mlp.down.multiplier"], out[p + "mlp.down.shift"] = multiplier_and_shift(s_w * s_out / s_res)
    return out


def export_tensors(model: ByteSSM, calibration_data: np.ndarray) -> dict[str, np.ndarray]:
    """Compute all integer tensors of the export of `model`."""
    stats = calibrate(model, calibration_data)
    s_res = stats["residual"] * RESIDUAL_HEADROOM / RESIDUAL_LIMIT
    tensors: dict[str, np.ndarray] = {}
    embedding = model.embedding.weight.detach().double().numpy()
    tensors["embedding"] = round_half_up(embedding / s_res).astype(np.int32)
    for i, layer in enumerate(model.layers):
        tensors.update(export_layer(i, layer, s_res, max(stats["state"][i], 1e-6)))

    s_head = act_scale(model.head_act)
    gain = model.norm_f.weight.detach().double().numpy()
    tensors["norm_f.gain"] = round_half_up(gain / s_head * 2**GAIN_BITS).astype(np.int64)
    w, s_w = quantize_rows(model.head.weight)
    tensors["head.weight"] = w
    tensors["head.multiplier"], tensors["head.shift"] = multiplier_and_shift(s_w * s_head * 2**LOGIT_BITS)
    distance = np.arange(EXP_TABLE_LEN, dtype=np.float64) / 2**LOGIT_BITS
    tensors["head.exp_table"] = round_half_up(np.exp(-distance) * 2**30).astype(np.int64)
    if model.retrieval is not None:
        tensors.update(export_retrieval(model.retrieval, s_head))
    check_bounds(tensors)
    return tensors


def export_retrieval(gate, s_head: float) -> dict[str, np.ndarray]:
    """Integer tensors of the retrieval head, all in logit units (1/64 nat)."""
    tensors: dict[str, np.ndarray] = {}
    w, s_w = quantize_rows(gate.gate.weight)
    tensors["retrieval.gate.weight"] = w
    multiplier, shift = multiplier_and_shift(s_w * s_head * 2**LOGIT_BITS)
    tensors["retrieval.gate.multiplier"], tensors["retrieval.gate.shift"] = multiplier, shift
    bias = gate.bias.detach().double().numpy()
    tensors["retrieval.bias"] = round_half_up(bias * 2**LOGIT_BITS).astype(np.int64)
    z = np.arange(GATE_MIN * 2**LOGIT_BITS, GATE_MAX * 2**LOGIT_BITS + 1, dtype=np.float64) / 2**LOGIT_BITS
    tensors["retrieval.softplus_table"] = round_half_up(np.logaddexp(0.0, z) * 2**LOGIT_BITS).astype(np.int64)
    return tensors


def check_bounds(tensors: dict[str, np.ndarray]) -> None:
    """Reject an export whose integers would break the int64 bounds of the inference spec."""
    for name, value in tensors.items():
        if name.endswith("gain") and np.abs(value).max() >= 2**30:
            raise ValueError(f"{name} reaches {np.abs(value).max()}, beyond 2**30; retrain with QAT")
        if name.endswith("multiplier") and value.max() > 2**MULTIPLIER_BITS:
            raise ValueError(f"{name} reaches {value.max()}, beyond 2**{MULTIPLIER_BITS}")


def export_model(model: ByteSSM, calibration_data: np.ndarray, path: str | Path) -> IntModel:
    """Write the integer export of `model` to `path` (safetensors) and return it loaded."""
    tensors = export_tensors(model, calibration_data)
    config_json = model.config.to_json()
    mid = model_id(config_json, tensors)
    metadata = {
        "format": EXPORT_FORMAT,
        "version": str(EXPORT_VERSION),
        "config": config_json,
        "model_id": mid.hex(),
        "constants": json.dumps({"gain_bits": GAIN_BITS, "decay_bits": DECAY_BITS, "delta_bits": DELTA_BITS,
                                 "logit_bits": LOGIT_BITS, "residual_limit": RESIDUAL_LIMIT,
                                 "state_limit": STATE_LIMIT}),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    # safetensors may create the file readable by its owner only; give it the usual mode.
    mask = os.umask(0)
    os.umask(mask)
    tmp.chmod(0o666 & ~mask)
    tmp.replace(path)
    return IntModel.load(path)
