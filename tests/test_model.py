import dataclasses

import pytest
import torch

from nnzip.config import BOS, PRESETS, ModelConfig, build_config, parse_override
from nnzip.model import ByteSSM, ssd_scan

TINY = PRESETS["tiny"]
LENGTH = 37  # not a multiple of the tiny chunk size, so the scan pads its last chunk


def random_ids(generator: torch.Generator, batch: int, length: int) -> torch.Tensor:
    ids = torch.randint(0, 256, (batch, length), generator=generator)
    ids[:, 0] = BOS
    return ids


def stepwise_logits(model: ByteSSM, ids: torch.Tensor) -> torch.Tensor:
    """Logits of the one-step form, fed one position at a time, shape (b, T, 256)."""
    state = model.initial_state(ids.shape[0])
    return torch.stack([model.step(ids[:, t], state) for t in range(ids.shape[1])], dim=1)


def calibrated_model(seed: int, qat: bool) -> ByteSSM:
    """A randomly initialized tiny model whose activation quantizers saw one training batch."""
    torch.manual_seed(seed)
    model = ByteSSM(TINY)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    with torch.no_grad():
        model(random_ids(generator, 4, 64))  # sets every ActQuant's amax
    model.set_qat(qat)
    return model.eval()


def test_length_not_chunk_multiple():
    assert LENGTH % TINY.chunk_size != 0


@pytest.mark.parametrize("qat", [False, True], ids=["qat_off", "qat_on"])
def test_forward_equals_step(qat):
    model = calibrated_model(seed=1, qat=qat)
    ids = random_ids(torch.Generator().manual_seed(2), 3, LENGTH)

    with torch.no_grad():
        parallel = model(ids)
        sequential = stepwise_logits(model, ids)

    difference = (parallel - sequential).abs().max().item()
    print(f"max |forward - step| with qat={qat}: {difference:.3g}")
    assert parallel.shape == sequential.shape
    assert difference < 1e-4


def naive_scan(x, dt, A, B, C):
    """Sequential reference: h = exp(dt A) h + dt x B^T and y = h C per head and position."""
    b, T, H, P = x.shape
    N = B.shape[-1]
    h = torch.zeros(b, H, P, N, dtype=x.dtype)
    outputs = []
    for t in range(T):
        decay = torch.exp(dt[:, t] * A)  # (b, H)
        update = (x[:, t] * dt[:, t, :, None])[..., None] * B[:, t, None, None, :]
        h = decay[..., None, None] * h + update
        outputs.append(torch.einsum("bhpn,bn->bhp", h, C[:, t]))
    return torch.stack(outputs, dim=1)


@pytest.mark.parametrize("chunk", [1, 8, 16, 64])
def test_ssd_scan_equals_naive(chunk):
    generator = torch.Generator().manual_seed(chunk)
    b, T, H, P, N = 2, LENGTH, 3, 4, 5
    x = torch.randn(b, T, H, P, generator=generator, dtype=torch.float64)
    dt = torch.rand(b, T, H, generator=generator, dtype=torch.float64) * 0.5
    A = -torch.rand(H, generator=generator, dtype=torch.float64) * 4 - 0.1
    B = torch.randn(b, T, N, generator=generator, dtype=torch.float64)
    C = torch.randn(b, T, N, generator=generator, dtype=torch.float64)

    chunked = ssd_scan(x, dt, A, B, C, chunk)
    expected = naive_scan(x, dt, A, B, C)

    difference = (chunked - expected).abs().max().item()
    print(f"max |ssd_scan - naive| with chunk={chunk}: {difference:.3g}")
    assert chunked.shape == expected.shape
    assert difference < 1e-9


def test_config_unknown_key():
    data = dataclasses.asdict(TINY) | {"d_modle": 64}
    with pytest.raises(ValueError, match="unknown config keys.*d_modle"):
        ModelConfig.from_dict(data)


def test_config_headdim_not_divisor():
    # tiny has d_inner = 64, which 24 does not divide
    with pytest.raises(ValueError, match="multiple of headdim"):
        build_config("tiny", ["headdim=24"])


def test_config_d_model_too_large():
    with pytest.raises(ValueError, match="<= 1024"):
        build_config("tiny", ["d_model=2048", "expand=1", "headdim=64"])


def test_config_d_inner_too_large():
    with pytest.raises(ValueError, match="<= 1024"):
        build_config("tiny", ["d_model=1024", "expand=2", "headdim=64"])


@pytest.mark.parametrize("field", ["d_model", "n_layer", "d_state", "chunk_size"])
def test_config_non_positive(field):
    with pytest.raises(ValueError, match=field):
        build_config("tiny", [f"{field}=0"])


def test_config_unknown_mlp():
    with pytest.raises(ValueError, match="unknown mlp"):
        build_config("tiny", ["mlp=gelu"])


def test_build_config_unknown_preset():
    with pytest.raises(ValueError, match="unknown preset"):
        build_config("huge")


def test_build_config_overrides():
    config = build_config("tiny", ["d_model=48", "n_layer=3", "headdim=32", "mlp=none"])
    assert config.d_model == 48
    assert config.n_layer == 3
    assert config.headdim == 32
    assert config.d_inner == 96
    assert config.n_heads == 3
    assert config.d_state == TINY.d_state


def test_build_config_no_overrides():
    assert build_config("tiny") == TINY


def test_parse_override_missing_equals():
    with pytest.raises(ValueError, match="key=value"):
        parse_override("d_model")


def test_parse_override_string_value():
    assert parse_override("arch=ssm") == ("arch", "ssm")


def test_small_parameter_count():
    count = ByteSSM(PRESETS["small"]).num_parameters()
    print(f"small preset: {count:,} parameters")
    assert count <= 2_000_000


def test_base_parameter_count():
    count = ByteSSM(PRESETS["base"]).num_parameters()
    print(f"base preset: {count:,} parameters")
    assert 8_000_000 <= count <= 12_000_000


def test_config_rejects_bool_size():
    with pytest.raises(ValueError, match="n_layer"):
        build_config("tiny", ["n_layer=true"])
