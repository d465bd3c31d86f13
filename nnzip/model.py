"""The float byte-level state-space model used for training (PyTorch).

Glossary (Mamba-2 notation):
    b   batch (streams)            T   sequence length
    D   d_model, residual width    E   d_inner = expand * D
    H   number of heads            P   headdim, E = H * P
    N   d_state, state size        K   d_conv, convolution width
    Δ   step size, softplus(dt + dt_bias), one per head and position
    A   decay rate, -exp(A_log), one scalar per head
    B, C  input and output projections of the state, (b, T, N), shared by all heads

The recurrence per head is h_t = exp(Δ_t A) h_{t-1} + Δ_t x_t B_t^T and y_t = h_t C_t + D x_t,
with h of shape (P, N). The state matrix is diagonal and, as in Mamba-2, a scalar times the
identity per head: that lets training use the chunked matrix form (`ssd_scan`), which is what
makes CPU training fast enough, and makes the integer decay one table lookup per head.

Two forms compute the same function: `forward` runs a whole sequence in parallel (training),
`step` advances one byte with an explicit `State` (coding). Quantization-aware training inserts
fake quantizers (`ActQuant`, `QLinear`) at the points where the integer export rounds, so the
exported integer model (nnzip.intmodel) sees the activations the float model was trained on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nnzip.config import INPUT_VOCAB, VOCAB_SIZE, ModelConfig
from nnzip.retrieval import BUCKETS as HISTORY_BUCKETS
from nnzip.retrieval import bucket_count
from nnzip.retrieval import GATE_MAX, GATE_MIN

DT_MAX = 8.0  # Δ is clamped here so that integer products Δ·x·B stay inside int64 (inference spec)
QMAX = 127  # int8 range used by every quantized activation and weight: [-127, 127]


def fake_quant(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Round x to the int8 grid of `scale`; the gradient passes straight through."""
    q = torch.clamp(torch.round(x / scale), -QMAX, QMAX) * scale
    return x + (q - x).detach()


class ActQuant(nn.Module):
    """Per-tensor int8 fake quantizer whose scale tracks an EMA of the activation's max |x|.

    The tracked `amax` becomes the activation scale (amax / 127) of the integer export.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("amax", torch.zeros(()))
        self.enabled = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                current = x.detach().abs().max().clamp(min=1e-6)
                if self.amax.item() == 0.0:
                    self.amax.copy_(current)
                else:
                    self.amax.mul_(0.99).add_(0.01 * current)
        if not self.enabled:
            return x
        return fake_quant(x, self.amax.clamp(min=1e-6) / QMAX)


class QLinear(nn.Linear):
    """Linear map without bias whose weight is fake-quantized per output row when QAT is on."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features, bias=False)
        self.qat = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight
        if self.qat:
            scale = weight.detach().abs().amax(dim=1, keepdim=True).clamp(min=1e-8) / QMAX
            weight = fake_quant(weight, scale)
        return F.linear(x, weight)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


@dataclass
class State:
    """Per-stream recurrent state of the whole model for the one-step form."""

    conv: list[torch.Tensor]  # per layer (b, conv_dim, K-1): the last K-1 conv inputs, oldest first
    ssm: list[torch.Tensor]  # per layer (b, H, P, N)


def segment_sums(a_cum: torch.Tensor) -> torch.Tensor:
    """Return exp(a_cum[l] - a_cum[s]) for l >= s and 0 above the diagonal, shape (..., Q, Q)."""
    diff = a_cum[..., :, None] - a_cum[..., None, :]
    q = a_cum.shape[-1]
    causal = torch.ones(q, q, dtype=torch.bool, device=a_cum.device).tril()
    return torch.exp(diff.masked_fill(~causal, float("-inf")))


def ssd_scan(
    x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, chunk: int
) -> torch.Tensor:
    """Run the selective scan over a sequence in chunked matrix form.

    Args: x (b, T, H, P), dt (b, T, H) after softplus, A (H) negative, B and C (b, T, N).
    Returns y (b, T, H, P) without the D skip term. Within a chunk the output is a masked
    (Q, Q) matrix product; between chunks a short loop carries the (H, P, N) state.
    """
    b, T, H, P = x.shape
    N = B.shape[-1]
    pad = (-T) % chunk
    if pad:
        # Padding with dt = 0 means no decay and no input, so real positions are unaffected.
        x, dt = F.pad(x, (0, 0, 0, 0, 0, pad)), F.pad(dt, (0, 0, 0, pad))
        B, C = F.pad(B, (0, 0, 0, pad)), F.pad(C, (0, 0, 0, pad))
    nc = (T + pad) // chunk

    xdt = (x * dt[..., None]).reshape(b, nc, chunk, H, P)
    Bc = B.reshape(b, nc, chunk, N)
    Cc = C.reshape(b, nc, chunk, N)
    a_cum = torch.cumsum((dt * A).reshape(b, nc, chunk, H).permute(0, 3, 1, 2), dim=-1)  # (b, H, nc, Q)

    # Outputs from inputs inside the same chunk.
    decay = segment_sums(a_cum)  # (b, H, nc, Q, Q)
    scores = torch.einsum("bcln,bcsn->bcls", Cc, Bc)  # (b, nc, Q, Q)
    y_diag = torch.einsum("bcls,bhcls,bcshp->bclhp", scores, decay, xdt)

    # State contributed by each chunk at its own end, then carried across chunks.
    decay_to_end = torch.exp(a_cum[..., -1:] - a_cum)  # (b, H, nc, Q)
    chunk_states = torch.einsum("bcsn,bhcs,bcshp->bchpn", Bc, decay_to_end, xdt)
    chunk_decay = torch.exp(a_cum[..., -1])  # (b, H, nc)
    h = x.new_zeros(b, H, P, N)
    entering = []
    for c in range(nc):
        entering.append(h)
        h = chunk_decay[:, :, c, None, None] * h + chunk_states[:, c]
    entering_states = torch.stack(entering, dim=1)  # (b, nc, H, P, N)

    # Outputs from the state that entered each chunk.
    y_off = torch.einsum("bcln,bchpn,bhcl->bclhp", Cc, entering_states, torch.exp(a_cum))
    y = (y_diag + y_off).reshape(b, nc * chunk, H, P)
    return y[:, :T]


class Mixer(nn.Module):
    """One Mamba-2 style selective SSM mixer with a short causal convolution and a SiLU gate."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.in_proj = QLinear(c.d_model, 2 * c.d_inner + 2 * c.d_state + c.n_heads)
        self.conv_weight = nn.Parameter(torch.randn(c.conv_dim, c.d_conv) / math.sqrt(c.d_conv))
        self.conv_bias = nn.Parameter(torch.zeros(c.conv_dim))
        self.A_log = nn.Parameter(torch.log(torch.linspace(1.0, 16.0, c.n_heads)))
        self.D = nn.Parameter(torch.ones(c.n_heads))

        # Δ starts log-uniform in [1e-3, 1e-1], as in Mamba; dt_bias is softplus^-1 of it.
        dt = torch.exp(torch.linspace(math.log(1e-3), math.log(1e-1), c.n_heads))
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))
        self.out_proj = QLinear(c.d_inner, c.d_model)
        self.out_proj.weight.data /= math.sqrt(2 * c.n_layer)

        # Fake quantizers, named as the integer export refers to them.
        self.in_act = ActQuant()  # normalized input of in_proj
        self.z_act = ActQuant()
        self.xbc_act = ActQuant()  # convolution input
        self.dt_act = ActQuant()
        self.conv_act = ActQuant()  # convolution output before SiLU
        self.ssm_in_act = ActQuant()  # x, B, C after SiLU
        self.gate_act = ActQuant()  # SiLU(z)
        self.y_act = ActQuant()  # SSM output with the D term, before the gate
        self.out_act = ActQuant()  # gated output, input of out_proj
        self.qat = False

    def set_qat(self, enabled: bool) -> None:
        self.qat = enabled
        self.in_proj.qat = self.out_proj.qat = enabled
        for module in self.children():
            if isinstance(module, ActQuant):
                module.enabled = enabled

    def quantized_conv_weight(self) -> torch.Tensor:
        if not self.qat:
            return self.conv_weight
        scale = self.conv_weight.detach().abs().amax(dim=1, keepdim=True).clamp(min=1e-8) / QMAX
        return fake_quant(self.conv_weight, scale)

    def split_projection(self, u: torch.Tensor):
        c = self.config
        zxbcdt = self.in_proj(self.in_act(u))
        z, xbc, dt = torch.split(zxbcdt, [c.d_inner, c.conv_dim, c.n_heads], dim=-1)
        return self.z_act(z), self.xbc_act(xbc), self.dt_act(dt)

    def step_size(self, dt: torch.Tensor) -> torch.Tensor:
        return F.softplus(dt + self.dt_bias).clamp(max=DT_MAX)

    def finish(self, y: torch.Tensor, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Add the D skip, gate with SiLU(z) and project back; x and y are (..., H, P)."""
        y = y + x * self.D[:, None]
        y = self.y_act(y.flatten(-2))
        gate = self.gate_act(F.silu(z))
        return self.out_proj(self.out_act(y * gate))

    def split_ssm_inputs(self, xbc: torch.Tensor):
        c = self.config
        xbc = self.ssm_in_act(F.silu(self.conv_act(xbc)))
        x, B, C = torch.split(xbc, [c.d_inner, c.d_state, c.d_state], dim=-1)
        return x.unflatten(-1, (c.n_heads, c.headdim)), B, C

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """u (b, T, D) normalized input -> (b, T, D) mixer output."""
        c = self.config
        T = u.shape[1]
        z, xbc, dt = self.split_projection(u)

        weight = self.quantized_conv_weight()[:, None, :]  # (conv_dim, 1, K)
        xbc = F.conv1d(xbc.transpose(1, 2), weight, self.conv_bias, padding=c.d_conv - 1, groups=c.conv_dim)
        xbc = xbc[..., :T].transpose(1, 2)  # (b, T, conv_dim)
        x, B, C = self.split_ssm_inputs(xbc)

        delta = self.step_size(dt)  # (b, T, H)
        A = -torch.exp(self.A_log)
        y = ssd_scan(x, delta, A, B, C, c.chunk_size)
        return self.finish(y, x, z)

    def step(self, u: torch.Tensor, conv_state: torch.Tensor, ssm_state: torch.Tensor):
        """u (b, D) for one position; returns output (b, D) and the new conv and SSM state."""
        z, xbc, dt = self.split_projection(u)

        window = torch.cat([conv_state, xbc[:, :, None]], dim=-1)  # (b, conv_dim, K)
        conv_out = (window * self.quantized_conv_weight()).sum(-1) + self.conv_bias
        x, B, C = self.split_ssm_inputs(conv_out)

        delta = self.step_size(dt)  # (b, H)
        decay = torch.exp(delta * -torch.exp(self.A_log))  # (b, H)
        update = (x * delta[..., None])[..., None] * B[:, None, None, :]  # (b, H, P, N)
        ssm_state = decay[..., None, None] * ssm_state + update
        y = torch.einsum("bhpn,bn->bhp", ssm_state, C)
        return self.finish(y, x, z), window[:, :, 1:], ssm_state


KAN_RANGE = 3.0  # basis centers span [-3, 3], the bulk of an RMS-normalized input
BASIS_SCALE = 1.0 / QMAX  # fixed int8 scale of the basis values, which lie in [0, 1]


class GatedMLP(nn.Module):
    """Gated MLP (SwiGLU form): down(a * SiLU(g)) with [a, g] = up(u)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.hidden = config.mlp_hidden
        self.up = QLinear(config.d_model, 2 * self.hidden)
        self.down = QLinear(self.hidden, config.d_model)
        self.down.weight.data /= math.sqrt(2 * config.n_layer)
        self.in_act = ActQuant()  # normalized input of up
        self.a_act = ActQuant()
        self.g_act = ActQuant()
        self.gate_act = ActQuant()  # SiLU(g)
        self.out_act = ActQuant()  # a * SiLU(g), input of down

    def set_qat(self, enabled: bool) -> None:
        self.up.qat = self.down.qat = enabled
        for module in (self.in_act, self.a_act, self.g_act, self.gate_act, self.out_act):
            module.enabled = enabled

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        a, g = self.up(self.in_act(u)).split(self.hidden, dim=-1)
        gate = self.gate_act(F.silu(self.g_act(g)))
        return self.down(self.out_act(self.a_act(a) * gate))


class KANMLP(nn.Module):
    """KAN-style MLP: learnable activations on edges, as a basis expansion and one linear map.

    Each input u_i passes through G Gaussian bumps on a grid shared by all inputs, and
    out_j = sum_i sum_k c_jik phi_k(u_i): the coefficients c_ji. are the learnable activation
    of edge (i, j). The basis is a fixed function of an int8 input, so the integer model
    computes it with one 255-entry table per basis function, and the linear map is one int8
    matmul with d_model * G inputs.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        grid = config.kan_grid
        self.register_buffer("centers", torch.linspace(-KAN_RANGE, KAN_RANGE, grid))
        self.width = 2 * KAN_RANGE / (grid - 1)
        self.proj = QLinear(config.d_model * grid, config.d_model)
        self.proj.weight.data /= math.sqrt(2 * config.n_layer)
        self.in_act = ActQuant()
        self.qat = False

    def set_qat(self, enabled: bool) -> None:
        self.qat = self.proj.qat = self.in_act.enabled = enabled

    def basis(self, u: torch.Tensor) -> torch.Tensor:
        """(..., D) -> (..., D * G) basis values in [0, 1]."""
        phi = torch.exp(-(((u[..., None] - self.centers) / self.width) ** 2))
        if self.qat:
            phi = fake_quant(phi, torch.tensor(BASIS_SCALE))
        return phi.flatten(-2)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.proj(self.basis(self.in_act(u)))


def build_mlp(config: ModelConfig) -> nn.Module | None:
    if config.mlp == "gated":
        return GatedMLP(config)
    if config.mlp == "kan":
        return KANMLP(config)
    return None


class Block(nn.Module):
    """Pre-norm residual block: x + Mixer(RMSNorm(x)), then x + MLP(RMSNorm(x)) when the
    config has an MLP."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.norm = RMSNorm(config.d_model)
        self.mixer = Mixer(config)
        self.mlp = build_mlp(config)
        self.mlp_norm = RMSNorm(config.d_model) if self.mlp is not None else None

    def set_qat(self, enabled: bool) -> None:
        self.mixer.set_qat(enabled)
        if self.mlp is not None:
            self.mlp.set_qat(enabled)

    def add_mlp(self, x: torch.Tensor) -> torch.Tensor:
        if self.mlp is None:
            return x
        return x + self.mlp(self.mlp_norm(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.add_mlp(x + self.mixer(self.norm(x)))

    def step(self, x, conv_state, ssm_state):
        out, conv_state, ssm_state = self.mixer.step(self.norm(x), conv_state, ssm_state)
        return self.add_mlp(x + out), conv_state, ssm_state


class RetrievalGate(nn.Module):
    """The retrieval head: adds a learned boost to the logit of the retrieved byte.

    For a position whose retriever code has bucket b > 0 (a match of that length class) and
    predicted byte p, logit[p] += softplus(z) with z = w . u + bias[b]: a gate from the head
    input u, so the model can weigh the match against its own prediction, plus a learned
    embedding of the match length. Code 0 (no match) adds nothing, so the stub retriever and
    a missing code tensor give the plain model.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.gate = QLinear(config.d_model, 1)
        # History buckets grow with the match length; index buckets (after them) start neutral.
        bias = torch.zeros(bucket_count(config.retrieval))
        bias[:HISTORY_BUCKETS] = torch.linspace(-2.0, 6.0, HISTORY_BUCKETS)
        self.bias = nn.Parameter(bias)
        nn.init.zeros_(self.gate.weight)
        self.qat = False

    def set_qat(self, enabled: bool) -> None:
        self.qat = enabled
        self.gate.qat = enabled

    def forward(self, logits: torch.Tensor, u: torch.Tensor, codes: torch.Tensor | None) -> torch.Tensor:
        if codes is None:
            return logits
        bucket, predicted = codes >> 8, codes & 255
        z = (self.gate(u)[..., 0] + self.bias[bucket]).clamp(GATE_MIN, GATE_MAX)
        if self.qat:
            z = round_ste(z * 64) / 64
        boost = F.softplus(z)
        if self.qat:
            boost = round_ste(boost * 64) / 64
        boost = boost * (bucket > 0)
        return logits + F.one_hot(predicted, VOCAB_SIZE).to(logits.dtype) * boost[..., None]


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Round to integers in the forward pass, identity in the backward pass."""
    return x + (torch.round(x) - x).detach()


class ByteSSM(nn.Module):
    """Embedding, residual SSM blocks, final norm and a linear head to 256 logits."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.embedding = nn.Embedding(INPUT_VOCAB, config.d_model)
        self.layers = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.norm_f = RMSNorm(config.d_model)
        self.head_act = ActQuant()
        self.head = QLinear(config.d_model, VOCAB_SIZE)
        self.retrieval = RetrievalGate(config) if config.retrieval != "none" else None
        nn.init.normal_(self.embedding.weight, std=1.0)

    def set_qat(self, enabled: bool) -> None:
        """Turn fake quantization of weights and activations on or off everywhere."""
        for layer in self.layers:
            layer.set_qat(enabled)
        self.head.qat = enabled
        self.head_act.enabled = enabled
        if self.retrieval is not None:
            self.retrieval.set_qat(enabled)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: torch.Tensor, codes: torch.Tensor | None = None) -> torch.Tensor:
        """idx (b, T) input ids (bytes or BOS) -> logits (b, T, 256); logits[:, t] predicts the byte after idx[:, t].

        codes (b, T) are the retriever's feature codes of the predicted bytes (nnzip.retrieval);
        without them a model with retrieval predicts as if nothing matched.
        """
        x = self.embedding(idx)
        for layer in self.layers:
            x = layer(x)
        return self.output(x, codes)

    def output(self, x: torch.Tensor, codes: torch.Tensor | None) -> torch.Tensor:
        u = self.head_act(self.norm_f(x))
        logits = self.head(u)
        if self.retrieval is not None:
            logits = self.retrieval(logits, u, codes)
        return logits

    def initial_state(self, batch: int) -> State:
        c = self.config
        device = self.embedding.weight.device
        conv = [torch.zeros(batch, c.conv_dim, c.d_conv - 1, device=device) for _ in self.layers]
        ssm = [torch.zeros(batch, c.n_heads, c.headdim, c.d_state, device=device) for _ in self.layers]
        return State(conv=conv, ssm=ssm)

    def step(self, idx: torch.Tensor, state: State, codes: torch.Tensor | None = None) -> torch.Tensor:
        """idx (b,) one byte per stream -> logits (b, 256); `state` is updated in place."""
        x = self.embedding(idx)
        for i, layer in enumerate(self.layers):
            x, state.conv[i], state.ssm[i] = layer.step(x, state.conv[i], state.ssm[i])
        return self.output(x, codes)
