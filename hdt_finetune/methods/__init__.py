"""Ways to make a small training series from a dataset's train split, by name.

Every method maps `MethodInputs` (the scaled train split, length M, seed, settings, ...) to a
`DistillOutcome` (a series [M, channel] and what to record about how it was made).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from hdt_finetune.distill.gradient_matching import run_gradient_matching
from hdt_finetune.distill.outcome import DistillOutcome, MethodInputs
from hdt_finetune.distill.settings import SWITCHES
from hdt_finetune.distill.trajectory_distillation import run_trajectory_distillation
from hdt_finetune.methods.reference_methods import full_data, random_subset


def _reference(function: Callable, inputs: MethodInputs) -> DistillOutcome:
    return DistillOutcome(function(inputs.train, inputs.length, inputs.seed), info={})


# "full" ignores the length: it is the whole train split, the reference every method chases.
METHODS: dict[str, Callable[[MethodInputs], DistillOutcome]] = {
    "random": partial(_reference, random_subset),
    "full": partial(_reference, full_data),
    "base": run_gradient_matching,
    **{name: partial(run_trajectory_distillation, name) for name in SWITCHES},
}

__all__ = ["METHODS", "DistillOutcome", "MethodInputs", "full_data", "random_subset"]
