"""Tests for the forecasting backbones: shapes, gradients, decompositions, learning, registry."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch
from torch.func import functional_call

from hdt_finetune.backbones import (
    BACKBONE_NAMES,
    DLinear,
    DLinearConfig,
    build_backbone,
)
from hdt_finetune.backbones.dlinear import MovingAverageDecomposition
from hdt_finetune.backbones.xpatch import EMADecomposition

SHAPES = [(96, 96, 7), (48, 24, 1), (30, 7, 3)]
NORMALISING = ("itransformer", "xpatch", "patchtst")
# Smaller Transformer widths keep the training test fast on a CPU; the architecture is the same.
FAST_OVERRIDES: dict[str, dict[str, object]] = {
    "dlinear": {},
    "itransformer": {"d_model": 32, "n_heads": 4, "d_ff": 64},
    "xpatch": {},
    "patchtst": {"d_model": 32, "n_heads": 4, "d_ff": 64, "e_layers": 2},
}


@pytest.fixture(autouse=True)
def single_thread() -> Iterator[None]:
    """Run on one thread: these models are tiny, and on a 2-core machine shared with another
    job, multi-threaded kernels stall each other and make the tests many times slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.mark.parametrize("context_length,horizon,n_channels", SHAPES)
@pytest.mark.parametrize("name", BACKBONE_NAMES)
def test_shape_finite_and_gradients(
    name: str, context_length: int, horizon: int, n_channels: int
) -> None:
    torch.manual_seed(0)
    model = build_backbone(name, context_length, horizon, n_channels)
    assert model.config.context_length == context_length
    x = torch.randn(4, context_length, n_channels)
    out = model(x)
    assert out.shape == (4, horizon, n_channels)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    for param_name, param in model.named_parameters():
        assert param.grad is not None, f"{name}: no gradient for {param_name}"
        assert torch.isfinite(param.grad).all(), f"{name}: non-finite gradient in {param_name}"
        assert param.grad.abs().sum() > 0, f"{name}: zero gradient for {param_name}"


@pytest.mark.parametrize("name", ["dlinear", "itransformer"])
def test_channel_agnostic_backbones_accept_any_channel_count(name: str) -> None:
    torch.manual_seed(0)
    model = build_backbone(name, 32, 8, n_channels=3).eval()
    assert model(torch.randn(2, 32, 11)).shape == (2, 8, 11)
    n_params = sum(p.numel() for p in model.parameters())
    other = build_backbone(name, 32, 8, n_channels=50)
    assert sum(p.numel() for p in other.parameters()) == n_params


def test_dlinear_individual_has_per_channel_weights() -> None:
    shared = build_backbone("dlinear", 24, 6, 4)
    individual = build_backbone("dlinear", 24, 6, 4, ["individual=true"])
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(individual) == 4 * count(shared)
    assert individual(torch.randn(2, 24, 4)).shape == (2, 6, 4)


def test_moving_average_decomposition() -> None:
    torch.manual_seed(0)
    decomposition = MovingAverageDecomposition(kernel_size=25)
    x = torch.randn(3, 50, 2)
    seasonal, trend = decomposition(x)
    assert trend.shape == x.shape and seasonal.shape == x.shape
    torch.testing.assert_close(trend + seasonal, x, rtol=0, atol=1e-6)
    # The trend at an interior point is the plain centred mean of 25 values.
    torch.testing.assert_close(trend[:, 20], x[:, 8:33].mean(dim=1))
    # The ends are padded with the edge value, not zeros.
    expected_first = (12 * x[:, 0] + x[:, :13].sum(dim=1)) / 25
    torch.testing.assert_close(trend[:, 0], expected_first)

    constant = torch.full((2, 40, 3), 3.7)
    seasonal, trend = decomposition(constant)
    torch.testing.assert_close(seasonal, torch.zeros_like(constant), rtol=0, atol=1e-6)
    torch.testing.assert_close(trend, constant)


def _ema_reference(x: torch.Tensor, alpha: float) -> torch.Tensor:
    trend = torch.empty_like(x)
    trend[..., 0] = x[..., 0]
    for t in range(1, x.shape[-1]):
        trend[..., t] = alpha * x[..., t] + (1 - alpha) * trend[..., t - 1]
    return trend


@pytest.mark.parametrize("alpha", [0.3, 0.05, 1.0])
def test_ema_matches_python_loop(alpha: float) -> None:
    torch.manual_seed(0)
    x = torch.randn(5, 96, dtype=torch.float64)
    seasonal, trend = EMADecomposition(96, alpha)(x.float())
    reference = _ema_reference(x, alpha)
    torch.testing.assert_close(trend.double(), reference, rtol=0, atol=1e-5)
    torch.testing.assert_close((seasonal + trend).double(), x, rtol=0, atol=1e-5)


def test_ema_is_stable_for_long_contexts() -> None:
    torch.manual_seed(0)
    decomposition = EMADecomposition(720, 0.3)
    assert torch.isfinite(decomposition.weights).all()
    x = torch.randn(4, 720) * 100
    seasonal, trend = decomposition(x)
    assert torch.isfinite(seasonal).all() and torch.isfinite(trend).all()
    torch.testing.assert_close(
        trend[:, -50:].double(), _ema_reference(x.double(), 0.3)[:, -50:], rtol=1e-5, atol=1e-3
    )


@pytest.mark.parametrize("name", NORMALISING)
def test_normalisation_is_undone(name: str) -> None:
    torch.manual_seed(0)
    model = build_backbone(name, 48, 12, 3).eval()
    x = torch.randn(4, 48, 3)
    offset = 25.0
    with torch.no_grad():
        shifted = model(x + offset)
        base = model(x)
    torch.testing.assert_close(shifted, base + offset, rtol=0, atol=1e-3)
    assert (shifted - base).mean().item() == pytest.approx(offset, abs=1e-3)


def _sine_windows(
    context_length: int, horizon: int, n_windows: int = 64
) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows of two noisy sine channels with different periods, levels and amplitudes."""
    t = torch.arange(n_windows * 3 + context_length + horizon, dtype=torch.float32)
    series = torch.stack(
        [
            2.0 + torch.sin(2 * math.pi * t / 24),
            -1.0 + 0.5 * torch.sin(2 * math.pi * t / 12 + 1.0),
        ],
        dim=-1,
    )
    series = series + 0.05 * torch.randn_like(series)
    starts = torch.arange(n_windows) * 3
    windows = torch.stack([series[s : s + context_length + horizon] for s in starts])
    return windows[:, :context_length], windows[:, context_length:]


@pytest.mark.parametrize("name", BACKBONE_NAMES)
def test_backbone_learns_sine_waves(name: str) -> None:
    torch.manual_seed(0)
    context_length, horizon = 48, 24
    x, y = _sine_windows(context_length, horizon)
    model = build_backbone(name, context_length, horizon, 2, FAST_OVERRIDES[name])

    def eval_mse() -> float:
        model.eval()
        with torch.no_grad():
            mse = torch.mean((model(x) - y) ** 2).item()
        model.train()
        return mse

    initial = eval_mse()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(200):
        optimizer.zero_grad()
        loss = torch.mean((model(x) - y) ** 2)
        loss.backward()
        optimizer.step()
    final = eval_mse()
    assert final < 0.5 * initial, f"{name}: MSE {initial:.4f} -> {final:.4f}"


def test_build_backbone_rejects_unknown_name() -> None:
    with pytest.raises(ValueError, match="no_such_model") as info:
        build_backbone("no_such_model", 96, 96, 7)
    for valid in BACKBONE_NAMES:
        assert valid in str(info.value)


def test_build_backbone_rejects_unknown_override() -> None:
    with pytest.raises(ValueError, match="d_modle") as info:
        build_backbone("itransformer", 96, 96, 7, {"d_modle": 64})
    assert "d_model" in str(info.value).replace("d_modle", "")


@pytest.mark.parametrize(
    "name,kwargs,field",
    [
        ("itransformer", {"d_model": 100, "n_heads": 8}, "d_model"),
        ("patchtst", {"d_model": 64, "n_heads": 5}, "d_model"),
        ("patchtst", {"patch_len": 200}, "patch_len"),
        ("xpatch", {"patch_len": 200}, "patch_len"),
        ("xpatch", {"alpha": 1.5}, "alpha"),
        ("dlinear", {"kernel_size": 0}, "kernel_size"),
        ("itransformer", {"dropout": 1.0}, "dropout"),
    ],
)
def test_bad_config_values_name_the_field(name: str, kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        build_backbone(name, 96, 96, 7, kwargs)


@pytest.mark.parametrize("name", BACKBONE_NAMES)
def test_negative_horizon_names_the_field(name: str) -> None:
    with pytest.raises(ValueError, match="horizon.*-5"):
        build_backbone(name, 96, -5, 7)


def test_config_is_frozen() -> None:
    config = DLinearConfig(context_length=96, horizon=24, n_channels=7)
    with pytest.raises(AttributeError):
        config.horizon = 12  # type: ignore[misc]


def test_dlinear_functional_call_and_unrolled_step() -> None:
    torch.manual_seed(0)
    model = DLinear(DLinearConfig(context_length=32, horizon=8, n_channels=2))
    params = {k: v.detach().clone().requires_grad_(True) for k, v in model.named_parameters()}
    x = torch.randn(5, 32, 2)
    torch.testing.assert_close(functional_call(model, params, (x,)), model(x))

    # Replacing the parameters changes the output (the dict really is used).
    zeroed = {k: torch.zeros_like(v) for k, v in params.items()}
    assert torch.count_nonzero(functional_call(model, zeroed, (x,))) == 0

    # A distillation-style unrolled step: gradient of the real loss after one inner SGD step
    # on synthetic data flows back to the synthetic data.
    synthetic_x = torch.randn(3, 32, 2, requires_grad=True)
    synthetic_y = torch.randn(3, 8, 2)
    inner = torch.mean((functional_call(model, params, (synthetic_x,)) - synthetic_y) ** 2)
    grads = torch.autograd.grad(inner, list(params.values()), create_graph=True)
    stepped = {k: v - 0.1 * g for (k, v), g in zip(params.items(), grads, strict=True)}
    outer = torch.mean((functional_call(model, stepped, (x,)) - torch.randn(5, 8, 2)) ** 2)
    (synthetic_grad,) = torch.autograd.grad(outer, [synthetic_x])
    assert torch.isfinite(synthetic_grad).all() and synthetic_grad.abs().sum() > 0
