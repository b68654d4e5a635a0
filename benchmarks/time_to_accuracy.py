"""Time to accuracy: how much compute each fine-tuning arm needs, distillation included,
before the model it would select reaches a target test MSE.

The rule (the honest fine-tuning benchmark's issue): at each validation point take the model
with the best validation MSE so far (the one early stopping would keep); the arm reaches a
target at the first point where that model's test MSE, on the fixed test subset probed at
every validation, is at or below it. Test MSE never chooses anything: it only says when the
chosen model got there. Targets are full data's selected test MSE plus 2.5, 5, 10 and 25%;
one that the starting weights already meet is marked so and left out of ratios.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

TARGET_MARGINS = ("2.5", "5", "10", "25")  # percent above full data's selected test MSE


@dataclass(frozen=True)
class CurvePoint:
    step: int
    val_mse: float
    test_mse: float  # on the fixed test subset (curve_test_stride)
    wall_s: float  # the fine-tune's wall time so far, probes left out


@dataclass(frozen=True)
class Reached:
    total_flops: float | None  # None: a seed never reached the target
    total_wall_s: float | None


def curve_points(rows: list[dict]) -> list[CurvePoint]:
    """The validation points of a run's metrics rows (`metrics.jsonl`), in step order."""
    return [CurvePoint(r["step"], r["val_mse"], r["test_mse_probe"], r["wall_s"])
            for r in sorted(rows, key=lambda r: r["step"]) if "val_mse" in r]


def selected_test_mse(points: list[CurvePoint]) -> list[float]:
    """At each point, the test MSE of the model with the best validation MSE so far (ties
    keep the earlier model, as early stopping does)."""
    best: CurvePoint | None = None
    selected = []
    for point in points:
        if best is None or point.val_mse < best.val_mse:
            best = point
        selected.append(best.test_mse)
    return selected


def first_reach(points: list[CurvePoint], target: float, flops_per_step: float,
                distill_flops: float, distill_wall_s: float) -> tuple[float, float] | None:
    """Total (FLOPs, wall seconds), distillation included, at the first point where the
    selected model is at or below `target`; None if it never is."""
    for point, mse in zip(points, selected_test_mse(points), strict=True):
        if mse <= target:
            return (distill_flops + point.step * flops_per_step,
                    distill_wall_s + point.wall_s)
    return None


def targets(full_selected_test_mse: float) -> dict[str, float]:
    return {margin: full_selected_test_mse * (1 + float(margin) / 100)
            for margin in TARGET_MARGINS}


def arm_reaches(seeds: list[list[CurvePoint]], target: float, flops_per_step: float,
                distill_flops: float, distill_wall_s: float) -> Reached:
    """The mean over seeds, or "never" (None) if any seed never reaches the target."""
    reached = [first_reach(points, target, flops_per_step, distill_flops, distill_wall_s)
               for points in seeds]
    if not reached or any(r is None for r in reached):
        return Reached(None, None)
    return Reached(statistics.mean(r[0] for r in reached),
                   statistics.mean(r[1] for r in reached))


def time_to_accuracy(full_selected_test_mse: float, start_test_mse: float,
                     arms: dict[str, dict]) -> dict[str, dict]:
    """`{margin: {arm: {"total_flops", "total_wall_s"}, "met_by_starting_weights": bool}}`.
    `arms[name]` holds "seeds" (curves), "flops_per_step", "distill_flops" and
    "distill_wall_s" (0 for full data)."""
    table: dict[str, dict] = {}
    for margin, target in targets(full_selected_test_mse).items():
        row: dict = {"target_mse": target, "met_by_starting_weights": start_test_mse <= target}
        for name, arm in arms.items():
            reached = arm_reaches(arm["seeds"], target, arm["flops_per_step"],
                                  arm["distill_flops"], arm["distill_wall_s"])
            row[name] = {"total_flops": reached.total_flops,
                         "total_wall_s": reached.total_wall_s}
        table[margin] = row
    return table


def mse_against_compute(seeds: list[list[CurvePoint]], flops_per_step: float,
                        distill_flops: float) -> list[tuple[float, float]]:
    """(total FLOPs, mean over seeds of the selected model's test MSE) at every step all the
    seeds validated at (they share one schedule; the shortest run ends the line)."""
    if not seeds:
        return []
    selected = [dict(zip((p.step for p in points), selected_test_mse(points), strict=True))
                for points in seeds]
    steps = sorted(set.intersection(*(set(by_step) for by_step in selected)))
    return [(distill_flops + step * flops_per_step,
             statistics.fmean(by_step[step] for by_step in selected)) for step in steps]
