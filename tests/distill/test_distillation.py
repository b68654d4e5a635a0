"""HDT, its peers and ablations on tiny data: loss falls, seeds repeat, runs resume."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from hdt_finetune.backbones import DLinear, DLinearConfig
from hdt_finetune.distill.expert_buffer import (
    ExpertBuffer,
    ExpertSettings,
    load_or_train_experts,
    sgd_trajectories,
    train_experts,
)
from hdt_finetune.distill.flat_params import windows_of
from hdt_finetune.distill.matching_backbone import DLinearMatching
from hdt_finetune.distill.matching_engine import MatchingState
from hdt_finetune.distill.real_sampler import SeriesSampler, initial_series, real_bin_scale
from hdt_finetune.distill.settings import SWITCHES, DistillSettings
from hdt_finetune.distill.spectral import to_spectrum, top_k_mask
from hdt_finetune.methods import METHODS, MethodInputs
from hdt_finetune.run_identity import CheckpointError
from hdt_finetune.typed_overrides import ConfigError, apply_overrides

TINY = DistillSettings(
    context_length=24, horizon=12, iterations=12, top_k=4, student_steps=4, student_batch=64,
    expert_snapshots=1, max_start_snapshot=2, checkpoint_every=4, value_every=3,
    gm_inner_steps=2, experts=ExpertSettings(n_experts=2, snapshots=3, snapshot_steps=29,
                                             batch_size=32),
)
SOURCE = {"dataset": "planted"}


def planted_corpus(rows: int = 960, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    columns = [3 * np.sin(2 * np.pi * t / 24 + c) + 2 * np.sin(2 * np.pi * t / 8 + 2 * c)
               + 0.3 * rng.standard_normal(rows) for c in range(2)]
    return np.stack(columns, axis=1).astype(np.float32)


def inputs(tmp_path, settings=TINY, seed=0, checkpoint=False, train=None, length=96):
    return MethodInputs(
        train=planted_corpus() if train is None else train, length=length, seed=seed,
        settings=settings, source_id=SOURCE, expert_cache=tmp_path / "experts",
        checkpoint_dir=tmp_path / "ckpt" if checkpoint else None, show_progress=False)


@pytest.mark.parametrize("method", ["mtt", "condtsf", "hdt", "hdt_freq", "hdt_harm", "hdt_soft",
                                    "base"])
def test_every_method_makes_a_finite_series_of_the_asked_length(tmp_path, method):
    outcome = METHODS[method](inputs(tmp_path))
    assert outcome.values.shape == (96, 2)
    assert np.isfinite(outcome.values).all()


@pytest.mark.parametrize("method", ["hdt", "mtt"])
def test_the_matching_loss_falls(tmp_path, method):
    # One start epoch, so every iteration measures the same kind of distance. Each method at
    # its own default step size (data_lr for the time domain, spectrum_lr for HDT's).
    settings = dataclasses.replace(TINY, iterations=60, max_start_snapshot=1, init="noise")
    curve = METHODS[method](inputs(tmp_path, settings)).info["loss_curve"]
    grad = [row["grad"] for row in curve]
    assert np.mean(grad[-10:]) < 0.8 * np.mean(grad[:10])


def test_distilling_a_planted_corpus_recovers_its_spectrum(tmp_path):
    # From noise, the harmonic loss alone must grow exactly the planted harmonics (hdt_harm
    # steps in the frequency domain: spectrum_lr, at its default).
    settings = dataclasses.replace(TINY, iterations=150, init="noise")
    values = METHODS["hdt_harm"](inputs(tmp_path, settings)).values
    spectrum = to_spectrum(torch.as_tensor(values))
    found = top_k_mask(spectrum, 2)
    planted = {96 // 24, 96 // 8}  # bin = length / period
    for c in range(2):
        assert set(torch.nonzero(found[:, c]).flatten().tolist()) == planted
    real = to_spectrum(torch.as_tensor(planted_corpus()[:96]))
    for bin_ in planted:
        assert spectrum[bin_].abs().numpy() == pytest.approx(real[bin_].abs().numpy(), rel=0.2)


@pytest.mark.parametrize("method", ["hdt", "condtsf", "hdt_soft", "base"])
def test_the_same_seed_gives_the_same_bits(tmp_path, method):
    first = METHODS[method](inputs(tmp_path)).values
    again = METHODS[method](inputs(tmp_path)).values
    other = METHODS[method](inputs(tmp_path, seed=1)).values
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_a_resumed_distillation_equals_an_uninterrupted_one(tmp_path, monkeypatch):
    uninterrupted = METHODS["hdt"](inputs(tmp_path)).values

    original_step = MatchingState.step
    calls = {"n": 0}

    def dying_step(self, *args):
        calls["n"] += 1
        if calls["n"] == 7:  # killed after iteration 6; the last checkpoint is at 4
            raise KeyboardInterrupt
        return original_step(self, *args)

    monkeypatch.setattr(MatchingState, "step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        METHODS["hdt"](inputs(tmp_path, checkpoint=True))
    monkeypatch.setattr(MatchingState, "step", original_step)
    assert (tmp_path / "ckpt" / "distill_state.pt").exists()
    resumed = METHODS["hdt"](inputs(tmp_path, checkpoint=True))
    assert len(resumed.info["loss_curve"]) == TINY.iterations - 4
    assert np.array_equal(resumed.values, uninterrupted)


def test_corrupt_or_foreign_checkpoints_are_refused(tmp_path):
    METHODS["hdt"](inputs(tmp_path, checkpoint=True))
    checkpoint = tmp_path / "ckpt" / "distill_state.pt"
    with pytest.raises(CheckpointError, match="belongs to another run"):
        METHODS["hdt"](inputs(tmp_path, seed=5, checkpoint=True))
    checkpoint.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable distillation checkpoint"):
        METHODS["hdt"](inputs(tmp_path, checkpoint=True))


def test_a_pickled_object_is_not_unpickled(tmp_path):
    import pickle

    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "distill_state.pt").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(CheckpointError, match="not a readable"):
        METHODS["hdt"](inputs(tmp_path, checkpoint=True))


def test_expert_buffer_is_cached_and_keyed_by_its_settings(tmp_path):
    train = torch.as_tensor(planted_corpus())
    backbone = DLinearConfig(24, 12, 2)
    settings = ExpertSettings(n_experts=2, snapshots=2, snapshot_steps=29, batch_size=32)
    first = load_or_train_experts(train, backbone, settings, 0, SOURCE, tmp_path, False)
    again = load_or_train_experts(train, backbone, settings, 0, SOURCE, tmp_path, False)
    assert not first.cached and again.cached
    assert torch.equal(first.trajectories, again.trajectories)
    assert again.wall_s == first.wall_s  # the cost travels with the buffer
    other = load_or_train_experts(train, backbone, dataclasses.replace(settings, snapshots=3), 0,
                                  SOURCE, tmp_path, False)
    assert other.key != first.key and other.trajectories.shape[1] == 4


def test_settings_overrides_name_bad_keys_and_values():
    settings = apply_overrides(DistillSettings(), ["top_k=16", "experts.n_experts=3",
                                                   "harmonic_weight=0.5"])
    assert settings.top_k == 16 and settings.experts.n_experts == 3
    assert settings.harmonic_weight == 0.5
    with pytest.raises(ConfigError, match="unknown setting 'topk'"):
        apply_overrides(DistillSettings(), ["topk=3"])
    with pytest.raises(ConfigError, match="bad value for top_k: 'many'"):
        apply_overrides(DistillSettings(), ["top_k=many"])
    with pytest.raises(ValueError, match="exceeds experts.snapshots"):
        apply_overrides(DistillSettings(), ["max_start_snapshot=50"])


def test_student_learning_rate_starts_where_j_steps_cover_the_experts_i_snapshots():
    from hdt_finetune.distill.settings import student_lr_start

    settings = DistillSettings(student_steps=20, expert_snapshots=2, experts=ExpertSettings(
        learning_rate=0.05, snapshot_steps=133))
    assert student_lr_start(settings) == pytest.approx(0.05 * 133 * 2 / 20)
    explicit = dataclasses.replace(settings, student_lr_init=0.01)
    assert student_lr_start(explicit) == 0.01


def test_expert_snapshots_are_a_fixed_number_of_steps_apart_whatever_the_data_size():
    """The fix for ETTm: with a snapshot per epoch, four times the data meant four times the
    distance between snapshots. Now both buffers move a comparable distance per snapshot."""
    backbone = DLinearConfig(24, 12, 2)
    settings = ExpertSettings(n_experts=1, snapshots=2, snapshot_steps=10, batch_size=32)
    small = train_experts(torch.as_tensor(planted_corpus(480)), backbone, settings, 0, False)
    large = train_experts(torch.as_tensor(planted_corpus(3840)), backbone, settings, 0, False)
    assert small.shape == large.shape == (1, 3, small.shape[2])
    travel = [float((t[0, 2] - t[0, 1]).norm()) for t in (small, large)]
    assert 0.5 < travel[1] / travel[0] < 2.0


def test_an_expert_with_a_generator_of_its_own_does_not_depend_on_the_others():
    """What lets processes train different experts: expert 1 alone equals expert 1 of two,
    while experts chained on one generator differ from each other."""
    backbone = DLinearConfig(24, 12, 2)
    settings = ExpertSettings(n_experts=2, snapshots=2, snapshot_steps=5, batch_size=16)
    x, y = windows_of(torch.as_tensor(planted_corpus(480)), 24, 12)
    def build():
        return DLinearMatching(backbone)

    both = sgd_trajectories(x, y, build, settings,
                            [torch.Generator().manual_seed(e) for e in (0, 1)], False)
    second = sgd_trajectories(x, y, build, settings, [torch.Generator().manual_seed(1)], False)
    assert both.shape == (2, 3, second.shape[2])
    torch.testing.assert_close(second[0], both[1], rtol=0, atol=0)
    assert not torch.equal(both[0], both[1])


def test_the_frequency_step_is_relative_to_the_real_spectrum():
    """The planted bins are the strong ones of the scale, and the scaled parameters start at
    exactly the initial series; one Adam step moves the planted bins most."""
    real = SeriesSampler(torch.as_tensor(planted_corpus()))
    scale = real_bin_scale(real, 96, seed=0)
    assert scale.shape == (49, 2) and bool((scale > 0).all())
    planted = [96 // 24, 96 // 8]
    for c in range(2):
        assert set(torch.topk(scale[1:, c], 2).indices.add(1).tolist()) == set(planted)
    state = MatchingState.start(SWITCHES["hdt_freq"], real, 96, 0, TINY)
    init = initial_series(real, 96, TINY.init, torch.Generator().manual_seed(0), TINY.top_k)
    torch.testing.assert_close(state.series().detach(), init, rtol=0, atol=1e-5)
    start = state.spectrum().detach().clone()
    state.param.grad = torch.ones_like(state.param)
    state.data_optimizer.step()
    moved = (state.spectrum().detach() - start).abs()
    assert float(moved[planted].min()) > 5 * float(moved[20:40].max())


def test_a_diverging_distillation_stops_with_advice(tmp_path):
    from hdt_finetune.distill.matching_engine import DistillationDivergedError

    # A huge student learning rate is clamped to the stable step: no divergence.
    METHODS["mtt"](inputs(tmp_path, dataclasses.replace(TINY, student_lr_init=1e6)))
    # A huge step on the synthetic data itself still ends the run, with advice.
    settings = dataclasses.replace(TINY, data_lr=1e30)
    with pytest.raises(DistillationDivergedError,
                       match="Lower student_lr_init, data_lr or spectrum_lr"):
        METHODS["mtt"](inputs(tmp_path, settings))


def test_the_student_step_stays_below_the_stability_limit():
    """A synthetic set of large, smooth values makes plain SGD at the learned rate diverge;
    the clamp keeps the student's quadratic stable: its loss never grows over the steps."""
    from hdt_finetune.distill.flat_params import FlatModel, windows_of
    from hdt_finetune.distill.matching_backbone import stable_student_lr

    t = torch.arange(400, dtype=torch.float32)[:, None]
    series = 5.0 + torch.sin(2 * torch.pi * t / 50)  # mean 5: E[x x^T] has a large eigenvalue
    x, y = windows_of(series, 24, 12)
    lr = stable_student_lr(x, 12)
    assert lr < 0.05  # far below the default start (0.665)
    student = FlatModel(DLinear(DLinearConfig(24, 12, 1)))
    flat = student.initial_vector()
    losses = []
    for _ in range(30):
        flat = flat.detach().requires_grad_(True)
        loss = torch.nn.functional.mse_loss(student(flat, x), y)
        (grad,) = torch.autograd.grad(loss, flat)
        flat = flat - lr * grad
        losses.append(float(loss.detach()))
    assert all(b <= a * 1.0001 for a, b in zip(losses, losses[1:], strict=False))
    diverging = student.initial_vector()
    for _ in range(30):
        diverging = diverging.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(torch.nn.functional.mse_loss(student(diverging, x), y),
                                      diverging)
        diverging = diverging - 0.665 * grad
    assert not torch.isfinite(diverging).all() or diverging.abs().max() > 1e6


@pytest.mark.parametrize("damage", ["truncated", "no meta", "wrong shape"])
def test_a_damaged_expert_cache_is_rebuilt_with_a_warning(tmp_path, caplog, damage):
    from safetensors.torch import save_file

    train = torch.as_tensor(planted_corpus())
    backbone = DLinearConfig(24, 12, 2)
    settings = ExpertSettings(n_experts=2, snapshots=2, snapshot_steps=10, batch_size=32)
    first = load_or_train_experts(train, backbone, settings, 0, SOURCE, tmp_path, False)
    folder = tmp_path / first.key
    if damage == "truncated":
        path = folder / "trajectories.safetensors"
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "no meta":
        (folder / "meta.json").unlink()
    else:
        save_file({"trajectories": torch.zeros(2, 3, 5)}, str(folder / "trajectories.safetensors"))
    with caplog.at_level("WARNING"):
        again = load_or_train_experts(train, backbone, settings, 0, SOURCE, tmp_path, False)
    assert "is damaged" in caplog.text and "rebuilding it" in caplog.text
    assert not again.cached and torch.equal(again.trajectories, first.trajectories)
    assert load_or_train_experts(train, backbone, settings, 0, SOURCE, tmp_path, False).cached


@pytest.mark.parametrize("method", ["condtsf", "hdt_soft", "hdt_fm_soft", "condtsf_fm"])
def test_value_term_pulls_targets_toward_the_experts_forecast(method):
    """Every covered row moves a fraction value_beta of the way to the mean of the expert's
    forecasts of it; rows no window forecasts (the first context) stay. The same holds when
    the series is held as a spectrum (HDT with soft targets), and when the expert is the
    frozen foundation model the set is made for (hdt_fm_soft, condtsf_fm)."""
    from hdt_finetune.distill.frozen_model import FrozenModel

    model_expert = SWITCHES[method].model_expert
    settings = dataclasses.replace(FM if model_expert else TINY, value_beta=0.25)
    real = torch.as_tensor(planted_corpus())
    state = MatchingState.start(SWITCHES[method], SeriesSampler(real), 96, 0, settings)
    student = DLinearMatching(DLinearConfig(24, 12, 2))
    expert = student.initial_vector() * 3
    buffer = ExpertBuffer(torch.stack([expert, expert])[None].expand(2, 2, -1), 0.0, False, "k")
    before = state.series().detach().clone()
    x, _ = windows_of(before, 24, 12)
    if model_expert:
        state.model_target = FrozenModel(settings, 0)
        forecast = state.model_target.forecast(x)
        buffer = None  # no DLinear expert is needed, or used
    else:
        forecast = student(expert, x).detach()  # [n, 12, 2]
    mean = torch.zeros_like(before)
    count = torch.zeros(96, 1)
    for i in range(x.shape[0]):
        mean[24 + i : 36 + i] += forecast[i]
        count[24 + i : 36 + i] += 1
    mean[24:] /= count[24:]
    state._value_term(buffer, student)
    after = state.series().detach()
    exact = {"rtol": 0, "atol": 0} if method == "condtsf" else {}  # an FFT round trip
    torch.testing.assert_close(after[:24], before[:24], **exact)
    torch.testing.assert_close(after[24:] - mean[24:], 0.75 * (before[24:] - mean[24:]),
                               **({} if method == "condtsf" else {"atol": 1e-5, "rtol": 1e-4}))
    assert (after[24:] - mean[24:]).abs().sum() < (before[24:] - mean[24:]).abs().sum()


def test_each_method_runs_its_own_tuned_settings_and_overrides_win():
    import json
    from pathlib import Path

    from hdt_finetune.data import DataSpec
    from hdt_finetune.distill.settings import TUNED_FOR_METHOD, method_settings
    from hdt_finetune.distillation import DistillConfig

    assert method_settings("hdt") == DistillSettings()  # HDT's search set the shared ones
    for method, tuned in TUNED_FOR_METHOD.items():
        assert method_settings(method) == apply_overrides(DistillSettings(), list(tuned))
        assert method_settings(method, ["data_lr=0.5"]).data_lr == 0.5
        config = DistillConfig(data=DataSpec("ETTh1"), method=method, out=Path("unused"))
        assert config.settings == method_settings(method)
    # The table is the search's choice as recorded, once the search is complete.
    chosen = json.loads((Path(__file__).resolve().parents[2] / "benchmarks" / "results"
                         / "baseline_tuning" / "chosen.json").read_text())
    assert {m: tuple(c["overrides"]) for m, c in chosen.items()} == TUNED_FOR_METHOD
    assert all(c["complete"] for c in chosen.values())


FM = dataclasses.replace(TINY, fm=dataclasses.replace(TINY.fm, source="random", size="tiny",
                                                      windows=8, real_windows=64,
                                                      patch_size=8))


def test_hdt_fm_matches_the_frozen_models_embeddings_and_counts_its_flops(tmp_path):
    """The embedding loss falls from the start; the model stays frozen; the same seed gives
    the same bits; the set's FLOPs are the run's count."""
    # Every bin and every window: the embedding term alone moves the series, and its loss
    # is not buried under the noise of a few windows' mean.
    settings = dataclasses.replace(FM, iterations=40, init="noise", harmonic_weight=0.01,
                                   top_k=64, fm=dataclasses.replace(FM.fm, windows=64,
                                                                    real_windows=512))
    outcome = METHODS["hdt_fm"](inputs(tmp_path, settings))
    embed = [row["embed"] for row in outcome.info["loss_curve"]]
    assert np.mean(embed[-10:]) < 0.8 * np.mean(embed[:10])
    assert outcome.info["frozen_model"] == "random-init"
    assert outcome.info["flops"] > 0 and outcome.info["expert_buffer"] is None
    soft = METHODS["hdt_fm_soft"](inputs(tmp_path, settings))  # + the model's forecasts
    assert soft.info["flops"] > outcome.info["flops"] and soft.info["expert_buffer"] is None
    assert np.isfinite(soft.values).all() and not np.array_equal(soft.values, outcome.values)
    again = METHODS["hdt_fm"](inputs(tmp_path, settings))
    assert np.array_equal(outcome.values, again.values)
    from hdt_finetune.distill.distill_flops import set_flops

    manifest = {"method": "hdt_fm", "source": {"kind": "dataset"},
                "method_info": outcome.info}
    assert set_flops(manifest).total == outcome.info["flops"]


def test_hdt_gm_matches_the_frozen_models_head_gradients_and_leaves_it_unchanged(tmp_path):
    """The distilled series' head gradients point closer to the real one than the starting
    series' did; the model's weights never move; same seed, same bits; FLOPs counted."""
    from hdt_finetune.distill.head_gradient_matching import HeadGradientTarget

    settings = dataclasses.replace(FM, iterations=15, init="noise", harmonic_weight=0.01,
                                   top_k=64)
    outcome = METHODS["hdt_gm"](inputs(tmp_path, settings))
    real = torch.as_tensor(planted_corpus())
    target = HeadGradientTarget(settings, real, 0)
    before = {k: v.clone() for k, v in target.model.state_dict().items()}
    start = MatchingState.start(SWITCHES["hdt_gm"], SeriesSampler(real), 96, 0, settings)
    # The engine's steps move the set, never the model, and leave no gradient in its head.
    running = MatchingState.start(SWITCHES["hdt_gm"], SeriesSampler(real), 96, 0, settings)
    running.model_target = target
    for _ in range(2):
        running.step(SeriesSampler(real), None, DLinearMatching(DLinearConfig(24, 12, 2)))
    assert all(p.grad is None for p in target.head)

    def distance(series):
        series = series.detach().clone().requires_grad_(True)
        losses = [target.loss(series, torch.Generator().manual_seed(k)) for k in range(6)]
        sum(losses).backward()  # gradients reach the series, never the weights
        assert series.grad.abs().sum() > 0
        return float(sum(losses).detach()) / len(losses)

    # 0.15 against 0.37 when written (a random-init tiny Moirai).
    assert distance(torch.as_tensor(outcome.values)) < 0.8 * distance(start.series())
    for key, value in target.model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert outcome.info["flops"] > 0 and outcome.info["expert_buffer"] is None
    assert "head_grad" in outcome.info["loss_curve"][0]
    again = METHODS["hdt_gm"](inputs(tmp_path, settings))
    assert np.array_equal(outcome.values, again.values)


def test_hdt_gms_real_gradient_is_the_mean_over_every_real_window_however_chunked(
        monkeypatch):
    """The fixed target is the gradient of the mean loss over all `fm.real_windows`: made in
    uneven chunks (4, 4 and 2 windows), it equals the one made in a single pass."""
    from hdt_finetune.distill import frozen_model
    from hdt_finetune.distill.head_gradient_matching import HeadGradientTarget

    settings = dataclasses.replace(FM, fm=dataclasses.replace(FM.fm, real_windows=10))
    real = torch.as_tensor(planted_corpus())
    whole = HeadGradientTarget(settings, real, 0).real_gradient
    monkeypatch.setattr(frozen_model, "REAL_CHUNK", 4)
    chunked = HeadGradientTarget(settings, real, 0).real_gradient
    assert any(g.abs().sum() > 0 for g in whole)
    for a, b in zip(whole, chunked, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("method", ["hdt_gm", "hdt_fm"])
def test_a_model_matching_iterations_flops_are_torchs_count_or_a_little_above(method):
    """Per iteration, on Moirai-small's architecture (random init), the estimate lies within
    [1, 1.5] of torch's FLOP counter (1.15 for hdt_gm, 1.27 for hdt_fm when written; the
    real windows' pass, 1.21 and 1.27): the distillation is never cheaper in the records
    than it was."""
    from torch.utils.flop_counter import FlopCounterMode

    from hdt_finetune.distill.trajectory_distillation import MODEL_TARGETS

    settings = dataclasses.replace(FM, context_length=96, horizon=96, iterations=1,
                                   fm=dataclasses.replace(FM.fm, size="small", patch_size=32,
                                                          windows=8, real_windows=64))
    target = MODEL_TARGETS[SWITCHES[method].model_matching](
        settings, torch.as_tensor(planted_corpus()), 0)
    series = torch.as_tensor(planted_corpus()[:400]).requires_grad_(True)
    with FlopCounterMode(display=False) as counter:
        target.loss(series, torch.Generator().manual_seed(0)).backward(inputs=[series])
    estimate = target.iteration_flops(2, 400)
    assert 1.0 <= estimate / counter.get_total_flops() <= 1.5
    # The whole: the real windows' pass, made once, and every iteration.
    target.settings = dataclasses.replace(settings, iterations=3)
    assert target.flops(2, 400, value_term=False) == target.real_flops(2) + 3 * estimate
    with FlopCounterMode(display=False) as counter:
        MODEL_TARGETS[SWITCHES[method].model_matching](
            settings, torch.as_tensor(planted_corpus()), 0)
    assert 1.0 <= target.real_flops(2) / counter.get_total_flops() <= 1.5


def test_the_window_differentiable_nll_is_the_forecast_distributions():
    """`horizon_nll` (hdt_gm's loss, scaled by window_loc_scale) equals the NLL of the
    predictive distribution the evaluation forecasts with (uni2ts's scaler)."""
    from hdt_finetune.finetune.forecast_adapter import ModelChoice, build_adapter

    adapter = build_adapter(ModelChoice(family="moirai", size="tiny", patch_size=8,
                                        init="random"), 24, 12, 0)
    model = adapter.module.eval()
    x = torch.as_tensor(planted_corpus()[:48, 0]).reshape(2, 24)
    y = torch.as_tensor(planted_corpus()[48:72, 0]).reshape(2, 12)
    batch = adapter.pack(x, y)
    with torch.no_grad():
        distr = adapter.forecast_distribution(model, batch)
        values = batch.target[:, adapter.layout.context_tokens:, :8]
        observed = batch.observed_mask[:, adapter.layout.context_tokens:, :8]
        expected = -distr.log_prob(values)[observed].mean()
    x.requires_grad_(True)
    nll = adapter.horizon_nll(model, x, y)
    torch.testing.assert_close(nll.detach(), expected, rtol=1e-4, atol=1e-5)
    # uni2ts's own packed NLL through MoiraiModule.forward, the fine-tune's loss.
    torch.testing.assert_close(nll.detach(), adapter.loss(model, x, y).detach(), rtol=1e-4,
                               atol=1e-5)
    nll.backward()
    assert x.grad.abs().sum() > 0


def test_condtsf_fm_trains_dlinear_experts_and_counts_the_models_forecasts(tmp_path):
    from hdt_finetune.distill.distill_flops import set_flops

    outcome = METHODS["condtsf_fm"](inputs(tmp_path, FM))
    plain = METHODS["condtsf"](inputs(tmp_path, FM))
    assert outcome.info["expert_buffer"] is not None  # trajectory matching's experts
    assert outcome.info["frozen_model"] == "random-init" and outcome.info["flops"] > 0
    assert not np.array_equal(outcome.values, plain.values)

    def flops(o, method):
        return set_flops({"method": method, "length": 96, "channels": ["a", "b"],
                          "source": {"kind": "dataset", "rows": [0, 960]},
                          "settings": dataclasses.asdict(FM), "method_info": o.info})

    model, dlinear = flops(outcome, "condtsf_fm"), flops(plain, "condtsf")
    assert model.experts == dlinear.experts
    value_dlinear = FM.iterations // FM.value_every * 2 * 2.0 * (96 - 36 + 1) * 2 * 24 * 12
    assert model.matching == pytest.approx(dlinear.matching - value_dlinear
                                           + outcome.info["flops"])


def test_hdt_fm_without_a_model_says_which_setting_is_missing(tmp_path):
    with pytest.raises(ValueError, match="fm.source"):
        METHODS["hdt_fm"](inputs(tmp_path, TINY))
    with pytest.raises(ValueError, match="fm.windows must be >= 1"):
        apply_overrides(DistillSettings(), ["fm.windows=0"])
