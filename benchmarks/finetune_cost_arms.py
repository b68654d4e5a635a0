"""The fine-tuning benchmark's arms and selection rule, defined once: the runner
(finetune_cost.py) runs them and the report (finetune_cost_report.py) reads them."""

from __future__ import annotations

import math
from dataclasses import dataclass

SET_LENGTH = 384  # rows per channel of every distilled arm's set


@dataclass(frozen=True)
class ArmSpec:
    name: str
    label: str
    trained: bool  # False: evaluated as loaded (zero-shot)
    method: str | None = None  # the distillation method of a set arm


ARMS = (
    ArmSpec("zeroshot", "zero-shot", trained=False),
    ArmSpec("random_init", "zero-shot, random-init model", trained=False),
    ArmSpec("full", "full data", trained=True),
    ArmSpec("hdt", "HDT set", trained=True, method="hdt"),
    ArmSpec("condtsf", "CondTSF set", trained=True, method="condtsf"),
    ArmSpec("random", "Random subset", trained=True, method="random"),
)
LABELS = {arm.name: arm.label for arm in ARMS}
TRAINED_ARMS = tuple(arm.name for arm in ARMS if arm.trained)
ZERO_SHOT_ARMS = tuple(arm.name for arm in ARMS if not arm.trained)
SET_ARMS = {arm.name: arm.method for arm in ARMS if arm.method}


@dataclass(frozen=True)
class SelectionRule:
    """How every arm's hyper-parameters are chosen, on the validation split only."""

    learning_rates: tuple[float, ...] = (1e-4, 1e-3)
    evals_per_epoch: int = 4  # validation every quarter epoch...
    min_eval_every: int = 10  # ...but not more often than every 10 steps
    max_eval_every: int = 200  # ...nor less often than every 200
    patience: int = 3  # stop after 3 validations without improvement; keep the best
    max_epochs: int = 20
    # A compute cap for this CPU; it binds only the full-data arm (1848 steps an epoch on
    # ETTh1), so a full fine-tune that had not stopped by then would cost more: the reported
    # cost reduction is then a lower bound.
    max_steps: int = 2000
    val_stride: int = 8  # every 8th validation window for early stopping (all arms alike)
    test_stride: int = 1  # the test split once per run, every window
    batch_size: int = 32
    warmup_steps: int = 10

    def schedule(self, train_windows: int) -> dict[str, int]:
        steps_per_epoch = max(1, train_windows // self.batch_size)
        eval_every = min(self.max_eval_every,
                         max(self.min_eval_every, math.ceil(steps_per_epoch /
                                                            self.evals_per_epoch)))
        max_steps = min(self.max_steps, self.max_epochs * steps_per_epoch)
        return {"eval_every": eval_every, "max_steps": max_steps, "save_every": eval_every}

    @staticmethod
    def choose(best_val_by_lr: dict[float, float]) -> float:
        """The learning rate whose seed-0 run had the lowest best validation MSE."""
        return min(best_val_by_lr, key=best_val_by_lr.get)


RULE = SelectionRule()
# A smoke run checks the program end to end in a few minutes, nothing more.
SMOKE_RULE = SelectionRule(learning_rates=(1e-3,), max_steps=4, min_eval_every=2,
                           max_eval_every=2, val_stride=400, test_stride=400, batch_size=8)
