"""The cost meter's wall time across a resume: probes stay out, the time before the kill stays
in, each counted once."""

from __future__ import annotations

import pytest

from hdt_finetune.finetune.cost_meter import CostMeter


class FakeClock:
    def __init__(self, seconds: float) -> None:
        self.value = seconds

    def seconds(self) -> float:
        return self.value


def meter(clock_s: float) -> CostMeter:
    return CostMeter(n_parameters=10, n_trainable=10, tokens_per_window=2, windows_per_step=4,
                     processes=1, weights="random", clock=FakeClock(clock_s))


def test_probe_time_is_left_out_before_and_after_a_resume():
    first = meter(100.0)  # 100 s on the clock, 30 of them probing the test subset
    first.add_eval(20.0)
    first.add_probe(30.0)
    for _ in range(5):
        first.step()
    assert first.elapsed() == pytest.approx(70.0)
    saved = first.state()

    resumed = meter(0.0)
    resumed.restore(saved)
    resumed.clock = FakeClock(50.0)  # 50 s more, 10 of them probing
    resumed.add_probe(10.0)
    resumed.add_eval(5.0)
    cost = resumed.to_dict()
    # 70 s before the kill + 40 s after; the 30 s probed before the kill not taken off twice.
    assert cost["wall_s"] == pytest.approx(110.0)
    assert cost["probe_s"] == pytest.approx(40.0) and cost["eval_s"] == pytest.approx(25.0)
    assert cost["train_s"] == pytest.approx(85.0) and cost["optimizer_steps"] == 5
