"""The evaluation harness on tiny data, and the full-data reference on ETTh1."""

from __future__ import annotations

import numpy as np
import pytest

from hdt_finetune.data import prepare_data
from hdt_finetune.evaluation import TrainingRecipe, evaluate_backbone
from hdt_finetune.methods import random_subset

TINY = TrainingRecipe(context_length=24, horizon=12, max_steps=150, eval_every=50)


@pytest.fixture
def sines(sine_csv):
    return prepare_data(str(sine_csv), context_length=24)


@pytest.mark.parametrize("backbone", ["dlinear", "itransformer", "xpatch"])
def test_trained_backbone_beats_predicting_zero(sines, backbone):
    result = evaluate_backbone(sines.train, sines, backbone, [0], TINY, show_progress=False)
    zero_mse = float(np.mean(sines.test[24:] ** 2))  # the scaled mean as the forecast
    assert result.mse_mean < 0.5 * zero_mse
    assert result.seeds[0].steps <= TINY.max_steps


def test_same_seed_same_result_and_std_over_seeds(sines):
    first = evaluate_backbone(sines.train, sines, "dlinear", [0, 1], TINY, show_progress=False)
    again = evaluate_backbone(sines.train, sines, "dlinear", [0, 1], TINY, show_progress=False)
    assert [s.mse for s in first.seeds] == [s.mse for s in again.seeds]
    assert first.seeds[0].mse != first.seeds[1].mse
    assert first.mse_std == pytest.approx(np.std([s.mse for s in first.seeds]))


def test_channel_count_mismatch_is_refused(sines):
    with pytest.raises(ValueError, match="training series has 2 channels"):
        evaluate_backbone(sines.train[:, :2], sines, "dlinear", [0], TINY, show_progress=False)


def test_random_subset_is_real_data_of_the_asked_length():
    train = np.arange(200, dtype=np.float32).reshape(100, 2)
    subset = random_subset(train, 30, seed=4)
    assert subset.shape == (30, 2)
    for c in range(2):
        start = int(np.flatnonzero(train[:, c] == subset[0, c])[0])
        np.testing.assert_array_equal(subset[:, c], train[start : start + 30, c])
    np.testing.assert_array_equal(subset, random_subset(train, 30, seed=4))
    with pytest.raises(ValueError, match="length must be in"):
        random_subset(train, 101, seed=0)


def test_random_is_where_the_trajectory_methods_start():
    import torch

    from hdt_finetune.distill.real_sampler import SeriesSampler, initial_series

    train = np.random.default_rng(0).normal(size=(500, 3)).astype(np.float32)
    for seed in (0, 7):
        start = initial_series(SeriesSampler(torch.as_tensor(train)), 120, "real",
                               torch.Generator().manual_seed(seed), top_k=8)
        np.testing.assert_array_equal(random_subset(train, 120, seed), start.numpy())
    assert not np.array_equal(random_subset(train, 120, 0), random_subset(train, 120, 7))


def test_bad_recipe_values_are_named():
    with pytest.raises(ValueError, match="max_steps must be >= 1"):
        TrainingRecipe(max_steps=0)
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        TrainingRecipe(learning_rate=-1.0)


def test_full_data_dlinear_on_etth1_matches_the_published_mse(shared_data_dir):
    """The protocol's anchor: DLinear 96 -> 96 on full ETTh1 is 0.386 in the literature."""
    data = prepare_data("ETTh1")
    result = evaluate_backbone(data.train, data, "dlinear", [0], TrainingRecipe(),
                               show_progress=False)
    assert abs(result.mse_mean - 0.386) / 0.386 < 0.05


def test_without_early_stopping_the_full_budget_runs_and_no_validation_is_used(sines):
    recipe = TrainingRecipe(context_length=24, horizon=12, max_steps=30, early_stopping=False)
    result = evaluate_backbone(sines.train, sines, "dlinear", [0], recipe, show_progress=False)
    assert result.seeds[0].steps == 30
    assert result.seeds[0].best_val_mse is None
