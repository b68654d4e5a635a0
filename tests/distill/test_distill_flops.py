"""The analytic FLOP counts against torch's FlopCounterMode, for the reference algorithm and
for DLinear's fast path."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from hdt_finetune.backbones import DLinearConfig
from hdt_finetune.distill.distill_flops import expert_rows, fast_path_flops, reference_flops
from hdt_finetune.distill.expert_buffer import ExpertSettings, sgd_trajectories
from hdt_finetune.distill.flat_params import windows_of
from hdt_finetune.distill.matching_backbone import DLinearMatching, stable_student_lr
from hdt_finetune.distill.settings import DistillSettings

L, H, C = 24, 12, 3


class Reference(DLinearMatching):
    """DLinear trained by the generic autograd path: the algorithm the count describes."""

    def __init__(self, config):
        super().__init__(config)
        self.fast = False


def counted(function) -> int:
    with FlopCounterMode(display=False) as counter:
        function()
    return counter.get_total_flops()


def test_expert_rows_follow_the_epoch_batches():
    assert expert_rows(10, 4, 3) == 10  # 4 + 4 + 2
    assert expert_rows(10, 4, 5) == 18  # one epoch, then 4 + 4
    assert expert_rows(8, 4, 4) == 16


LENGTH, TRAIN_ROWS = 100, 300  # 65 synthetic windows


def settings_with(batch: int) -> DistillSettings:
    return DistillSettings(context_length=L, horizon=H, iterations=1, student_steps=4,
                           student_batch=batch,
                           experts=ExpertSettings(n_experts=2, snapshots=8, snapshot_steps=5,
                                                  batch_size=16))


def counted_distillation(model: type[DLinearMatching], batch: int) -> tuple[int, int]:
    """FlopCounterMode's count of one matching iteration (the stable-step bound, the
    student's steps through `model`'s path and the matching loss' backward) and of the
    experts' SGD."""
    student = model(DLinearConfig(L, H, C))
    series = torch.randn(LENGTH, C, requires_grad=True)
    lr = torch.tensor(0.1, requires_grad=True)

    def iteration():
        x, y = windows_of(series, L, H)
        stable_student_lr(x.detach(), H)
        start = student.initial_vector()
        flat = student.unrolled_sgd(start, x, y, lr, 4, batch, torch.Generator().manual_seed(0))
        (flat - start).pow(2).sum().backward()

    x, y = windows_of(torch.randn(TRAIN_ROWS, C), L, H)
    experts = counted(lambda: sgd_trajectories(
        x, y, lambda: model(DLinearConfig(L, H, C)), settings_with(batch).experts,
        [torch.Generator().manual_seed(0)] * 2, show_progress=False))
    return counted(iteration), experts


def test_counted_flops_of_one_reference_iteration_and_of_the_experts():
    expected = reference_flops("mtt", settings_with(16), LENGTH, C, TRAIN_ROWS)
    assert counted_distillation(Reference, 16) == (expected.matching, expected.experts)
    assert reference_flops("hdt_harm", settings_with(16), LENGTH, C, TRAIN_ROWS).total == 0


def test_the_issue_figures_at_todays_defaults():
    """ETTh1 (8640 train rows, 7 channels), M = 384: about 2.4 TFLOP of matching and
    0.4 of experts, as the distillation-speed issue worked out."""
    flops = reference_flops("hdt", DistillSettings(), 384, 7, 8640)
    assert 2.3e12 < flops.matching < 2.5e12
    assert 0.38e12 < flops.experts < 0.44e12
    fast = fast_path_flops("hdt", DistillSettings(), 384, 7, 8640)
    assert fast.total < 0.35 * flops.total  # the closed form's sufficient statistics


@pytest.mark.parametrize("batch", [64, 16], ids=["every-window", "minibatch"])
def test_counted_flops_of_the_fast_path(batch):
    expected = fast_path_flops("mtt", settings_with(batch), LENGTH, C, TRAIN_ROWS)
    assert counted_distillation(DLinearMatching, batch) == (expected.matching, expected.experts)


def test_a_sets_flops_come_from_its_manifest(tmp_path, shared_data_dir, monkeypatch):
    from hdt_finetune.data import DataSpec
    from hdt_finetune.distill.distill_flops import set_flops
    from hdt_finetune.distillation import DistillConfig, run_distillation
    from hdt_finetune.synthetic import read_synthetic_set
    from hdt_finetune.typed_overrides import apply_overrides

    monkeypatch.setenv("HDT_CACHE_DIR", str(tmp_path / "cache"))
    settings = apply_overrides(DistillSettings(), ["iterations=3", "experts.n_experts=1"])
    manifests = {}
    for method in ("condtsf", "random", "base"):
        folder = run_distillation(DistillConfig(data=DataSpec("ETTh1"), method=method,
                                                out=tmp_path / method, length=192,
                                                settings=settings, show_progress=False))
        manifests[method] = read_synthetic_set(folder).manifest
    assert set_flops(manifests["condtsf"]) == fast_path_flops("condtsf", settings, 192, 7, 8640)
    assert set_flops(manifests["random"]).total == 0
    with pytest.raises(ValueError, match="no FLOP count for a 'base' set"):
        set_flops(manifests["base"])
