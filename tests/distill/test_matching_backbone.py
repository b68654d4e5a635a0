"""DLinear's closed-form fast path against the generic autograd path it specialises."""

import pytest
import torch

from hdt_finetune.backbones import DLinearConfig
from hdt_finetune.distill.expert_buffer import ExpertSettings, sgd_trajectories
from hdt_finetune.distill.flat_params import windows_of
from hdt_finetune.distill.matching_backbone import DLinearMatching, MatchingBackbone

L, H, C = 24, 12, 3


def unroll_both(batch: int):
    """The parameters after 5 student steps and the meta-gradients of a matching loss
    (in the series and the learning rate), by each path from the same start and generator."""
    student = DLinearMatching(DLinearConfig(L, H, C))
    start = student.initial_vector()
    target = start + 0.01 * torch.randn(start.shape, generator=torch.Generator().manual_seed(1))
    results = []
    for unroll in (MatchingBackbone.unrolled_sgd, DLinearMatching.unrolled_sgd):
        series = torch.randn(80, C, generator=torch.Generator().manual_seed(0))
        series.requires_grad_(True)
        lr = torch.tensor(0.3, requires_grad=True)
        x, y = windows_of(series, L, H)  # 45 windows
        generator = torch.Generator().manual_seed(7)
        flat = unroll(student, start, x, y, lr, 5, batch, generator)
        (flat - target).pow(2).sum().backward()
        results.append((flat.detach(), series.grad, lr.grad, generator.get_state()))
    return results


@pytest.mark.parametrize("batch", [64, 16], ids=["every-window", "minibatch"])
def test_fast_student_steps_match_the_generic_path(batch):
    (flat, series_grad, lr_grad, rng), (fast, fast_series_grad, fast_lr_grad, fast_rng) = \
        unroll_both(batch)
    assert not torch.equal(flat, DLinearMatching(DLinearConfig(L, H, C)).initial_vector())
    torch.testing.assert_close(fast, flat, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(fast_series_grad, series_grad, rtol=1e-3, atol=1e-6)
    torch.testing.assert_close(fast_lr_grad, lr_grad, rtol=1e-3, atol=1e-6)
    assert torch.equal(fast_rng, rng)  # the same draws: the rest of a distillation is alike


def test_batched_experts_match_one_expert_at_a_time():
    series = torch.randn(300, C, generator=torch.Generator().manual_seed(0))
    x, y = windows_of(series, L, H)
    settings = ExpertSettings(n_experts=3, snapshots=3, snapshot_steps=7, batch_size=16)
    fast_model = DLinearMatching(DLinearConfig(L, H, C))

    class Generic(DLinearMatching):  # the same model, trained by the generic path
        def __init__(self, config):
            super().__init__(config)
            self.fast = False

    runs = [sgd_trajectories(x, y, lambda cls=cls: cls(DLinearConfig(L, H, C)), settings,
                             [torch.Generator().manual_seed(3)] * 3, show_progress=False)
            for cls in (Generic, DLinearMatching)]
    assert runs[0].shape == (3, 4, fast_model.n_params)
    assert not torch.equal(runs[0][:, 0], runs[0][:, -1])
    torch.testing.assert_close(runs[1], runs[0], rtol=1e-4, atol=1e-6)


def test_experts_features_per_batch_equal_the_precomputed_ones():
    """A split whose features exceed the memory budget computes them batch by batch."""
    series = torch.randn(300, C, generator=torch.Generator().manual_seed(0))
    x, y = windows_of(series, L, H)
    settings = ExpertSettings(n_experts=2, snapshots=2, snapshot_steps=5, batch_size=16)

    class Tight(DLinearMatching):
        feature_bytes = 0

    runs = [sgd_trajectories(x, y, lambda cls=cls: cls(DLinearConfig(L, H, C)), settings,
                             [torch.Generator().manual_seed(3)] * 2, show_progress=False)
            for cls in (DLinearMatching, Tight)]
    torch.testing.assert_close(runs[1], runs[0], rtol=1e-5, atol=1e-7)


def test_per_channel_dlinear_takes_the_generic_path():
    assert DLinearMatching(DLinearConfig(L, H, C)).fast
    assert not DLinearMatching(DLinearConfig(L, H, C, individual=True)).fast


def test_trend_features_are_dlinears_decomposition():
    model = DLinearMatching(DLinearConfig(L, H, C))
    x = torch.randn(5, L, C)
    seasonal, trend = model.module.decomposition(x)
    z = model.features(x)
    torch.testing.assert_close(z[..., :L], trend.transpose(1, 2))
    torch.testing.assert_close(z[..., L:], seasonal.transpose(1, 2))
    flat = model.initial_vector()
    torch.testing.assert_close(model.join(*model.split(flat)), flat, rtol=0, atol=0)
