"""The judgement of issue 17's targets: a win needs a margin beyond the seeds' spread, a
dataset without its three seeds is pending, and a missed target says so."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from default_arm_targets import DATASETS, equal_compute, headline, time_to_accuracy  # noqa: E402
from finetune_cost_report import Arm  # noqa: E402


def arm(mses, flops=1e12, train_s=100.0, distill_s=0.0):
    runs = [{"test": {"mse": m}, "cost": {"flops": flops, "train_s": train_s},
             "train_data": {"distill_cost": {"wall_s": distill_s}}} for m in mses]
    return Arm("x", runs, 1e-3, {})


def test_a_win_at_equal_compute_needs_a_margin_beyond_the_spread():
    won = {"v": arm([0.30, 0.31, 0.29]), "full_at_v_total": arm([0.35, 0.36, 0.34])}
    close = {"v": arm([0.30, 0.34, 0.26]), "full_at_v_total": arm([0.31, 0.31, 0.31])}
    by = {"ETTh1": won, "ETTh2": won, "ETTm1": close, "ETTm2": close, "exchange_rate": won}
    verdict = equal_compute(by, "v")
    assert verdict.status == "met" and verdict.detail.startswith("3 of 5 won")
    by["exchange_rate"] = {"v": arm([0.30]), "full_at_v_total": arm([0.35])}  # one seed
    assert equal_compute(by, "v").status == "not met so far"
    by["exchange_rate"] = close
    assert equal_compute(by, "v").status == "missed"


def test_time_to_accuracy_needs_etth1_and_two_more():
    def row(arm_flops, full_flops=1e13):
        return {"5": {"v": {"total_flops": arm_flops}, "full": {"total_flops": full_flops}}}

    reach = {d: row(5e11) for d in DATASETS}  # 20x everywhere
    assert time_to_accuracy(reach, "v").status == "met"
    reach["ETTh1"] = row(None)  # never reached on ETTh1
    verdict = time_to_accuracy(reach, "v")
    assert verdict.status == "missed" and "ETTh1: never" in verdict.detail
    # Full data never reaching its own seeds' mean + 5% is no win for the arm.
    reach["ETTh1"] = row(5e11, full_flops=None)
    verdict = time_to_accuracy(reach, "v")
    assert verdict.status == "missed"
    assert "ETTh1: full data never (some seed), the arm at 5.00e+11 FLOPs" in verdict.detail
    reach = {"ETTh1": row(5e11), "ETTh2": row(5e11)}  # the rest pending
    assert time_to_accuracy(reach, "v").status == "not met so far"
    # ETTh1 pending cannot stand in for one of the two more datasets.
    reach = {"ETTh2": row(5e11), "ETTh2x": row(None)}
    reach.update({d: row(5e12) for d in ("ETTm1", "ETTm2", "exchange_rate")})  # 2x: missed
    assert time_to_accuracy(reach, "v").status == "missed"


def test_a_target_the_starting_weights_meet_has_no_ratio_and_does_not_count():
    reach = {d: {"5": {"v": {"total_flops": 5e11}, "full": {"total_flops": 1e13},
                       "met_by_starting_weights": False}} for d in DATASETS}
    assert time_to_accuracy(reach, "v").status == "met"
    for d in ("ETTm1", "ETTm2", "exchange_rate"):  # full data's step 0 meets it: zero FLOPs
        reach[d]["5"].update(met_by_starting_weights=True, full={"total_flops": 0.0})
    verdict = time_to_accuracy(reach, "v")
    assert verdict.status == "missed"
    assert "ETTm2: met by the starting weights, no ratio" in verdict.detail
    assert ": 0.0x" not in verdict.detail


def test_the_headline_checks_accuracy_compute_and_wall_time_together():
    full = arm([0.400] * 3, flops=2.5e13, train_s=1000.0)
    good = arm([0.405] * 3, flops=1e12, train_s=50.0, distill_s=40.0)
    assert headline({"full": full, "v": good}, "v").status == "met"
    slow = arm([0.405] * 3, flops=1e12, train_s=50.0, distill_s=80.0)  # 7.7x with distill
    assert headline({"full": full, "v": slow}, "v").status == "missed"
    assert headline({"full": full}, "v").status == "not met so far"
