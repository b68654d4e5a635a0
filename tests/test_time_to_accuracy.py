"""Time to accuracy on hand-made curves: the selected model, distillation counted, never."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from time_to_accuracy import (  # noqa: E402
    CurvePoint,
    curve_points,
    first_reach,
    mse_against_compute,
    selected_test_mse,
    time_to_accuracy,
)


def curve(*points: tuple[int, float, float]) -> list[CurvePoint]:
    return [CurvePoint(step, val, test, wall_s=float(step)) for step, val, test in points]


def test_the_selected_model_is_the_best_on_validation_so_far_not_on_test():
    points = curve((0, 1.0, 0.9), (10, 0.8, 0.7), (20, 0.9, 0.1), (40, 0.8, 0.2))
    # Step 20's test MSE is lowest, but validation never picks it; a tie keeps step 10.
    assert selected_test_mse(points) == [0.9, 0.7, 0.7, 0.7]
    assert first_reach(points, 0.5, 2.0, 0.0, 0.0) is None


def test_distillation_is_counted_and_the_first_point_wins():
    points = curve((0, 1.0, 0.9), (10, 0.8, 0.7), (20, 0.7, 0.6))
    assert first_reach(points, 0.75, flops_per_step=2.0, distill_flops=100.0,
                       distill_wall_s=5.0) == (120.0, 15.0)
    assert first_reach(points, 0.95, 2.0, 100.0, 5.0) == (100.0, 5.0)  # the starting weights


def test_the_table_says_never_and_marks_targets_the_start_already_meets():
    full = [curve((0, 1.0, 1.0), (10, 0.5, 0.50), (20, 0.4, 0.40))]
    distilled = [curve((0, 1.0, 1.0), (10, 0.5, 0.42)), curve((0, 1.0, 1.0), (10, 0.6, 0.45))]
    arms = {"full": {"seeds": full, "flops_per_step": 1.0, "distill_flops": 0.0,
                     "distill_wall_s": 0.0},
            "hdt": {"seeds": distilled, "flops_per_step": 1.0, "distill_flops": 50.0,
                    "distill_wall_s": 3.0}}
    table = time_to_accuracy(0.40, start_test_mse=1.0, arms=arms)
    assert table["10"]["target_mse"] == pytest.approx(0.44)
    assert table["10"]["full"] == {"total_flops": 20.0, "total_wall_s": 20.0}
    assert table["10"]["hdt"] == {"total_flops": None, "total_wall_s": None}  # seed 2: 0.45
    assert table["25"]["hdt"] == {"total_flops": 60.0, "total_wall_s": 13.0}
    assert not table["25"]["met_by_starting_weights"]
    assert time_to_accuracy(0.9, 1.0, arms)["25"]["met_by_starting_weights"]


def test_curve_points_read_validation_rows_of_the_metrics_file():
    rows = [{"step": 10, "train_loss": 1.0, "val_mse": 0.5, "test_mse_probe": 0.6, "wall_s": 3},
            {"step": 5, "train_loss": 1.0, "wall_s": 1},
            {"step": 0, "val_mse": 0.9, "test_mse_probe": 0.8, "wall_s": 0}]
    assert [p.step for p in curve_points(rows)] == [0, 10]


def test_accuracy_against_compute_counts_distillation_and_ends_with_the_shortest_seed():
    long = curve((0, 1.0, 0.9), (10, 0.8, 0.7), (20, 0.9, 0.1), (40, 0.6, 0.5))
    short = curve((0, 1.0, 0.9), (10, 0.7, 0.5))
    points = mse_against_compute([long, short], flops_per_step=2.0, distill_flops=100.0)
    # The selected model's test MSE (step 20's 0.1 is never selected), mean over seeds.
    assert points == [(100.0, pytest.approx(0.9)), (120.0, pytest.approx(0.6))]
