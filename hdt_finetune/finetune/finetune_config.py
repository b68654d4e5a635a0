"""The typed configuration of one fine-tuning run, built from a recipe config file and
`key=value` overrides by the one override parser (`typed_overrides`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from hdt_finetune.finetune.forecast_adapter import ModelChoice
from hdt_finetune.finetune.train_data import TrainData
from hdt_finetune.typed_overrides import apply_overrides, require_finite

Mode = Literal["full", "head", "freeze_ffn", "lora"]
Precision = Literal["auto", "no", "bf16", "fp16"]
EvalSchedule = Literal["every", "log"]
# The log schedule: the starting weights (step 0), then doubling steps from the first to the
# last of these, then every eval_every steps. Short fine-tunes (small sets) and long ones
# (full data) are then validated at the same steps.
LOG_SCHEDULE = (10, 320)
# Settings that do not change what the run trains, and whose effect on the record is
# computed afresh at the end (the final test): a checkpoint made under other values of these
# is still this run's (everything else is in the checkpoint fingerprint). curve_test_stride
# is in it: its probes accumulate during training, and a resumed curve probing another test
# subset would mix two curves in one.
NOT_IN_FINGERPRINT = ("out", "overwrite", "trackers", "save_every", "test_stride",
                      "num_samples")


@dataclass(frozen=True)
class FinetuneConfig:
    out: Path = Path("runs/finetune")
    overwrite: bool = False  # replace a run of other settings in `out` (only our files)
    model: ModelChoice = field(default_factory=ModelChoice)
    # data: validation and test always come from the real splits of `dataset`
    dataset: str = "ETTh1"
    train_data: TrainData = field(default_factory=lambda: TrainData("full"))
    context_length: int = 96
    horizon: int = 96
    # Every n-th window (1: all of them). Validation runs many times per fine-tune, for early
    # stopping; the test split once, at the end (test_stride 0: no final test, the record's
    # "test" is null; with curve_test_stride 0 too, a validation-only run such as a screen).
    val_stride: int = 1
    test_stride: int = 1
    # optimisation
    mode: Mode = "full"
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    warmup_steps: int = 10
    max_steps: int = 200  # 0: no training, only the test evaluation (zero-shot)
    batch_size: int = 32
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    mixed_precision: Precision = "auto"  # auto: bf16 on a GPU that has it, else fp32
    # evaluation, early stopping, checkpoints
    eval_every: int = 50
    # every: validate every eval_every steps; log: at the starting weights (step 0, which
    # early stopping can then keep), at 10, 20, 40, ..., 320 (LOG_SCHEDULE), then every
    # eval_every steps. Both also at max_steps.
    eval_schedule: EvalSchedule = "every"
    # n > 0: at every validation also the test MSE on every n-th test window, for learning
    # curves and time to accuracy only (never for a choice); its time is not in the cost
    curve_test_stride: int = 0
    patience: int = 3
    save_every: int = 50
    num_samples: int = 100  # forecast samples for CRPS (probabilistic models)
    seed: int = 0
    trackers: str = ""  # comma-separated Accelerate trackers (tensorboard, wandb, ...)

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        for name in ("context_length", "horizon", "val_stride", "lora_rank",
                     "lora_alpha", "batch_size", "grad_accum", "eval_every", "patience",
                     "save_every", "num_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("test_stride", "curve_test_stride"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 (0: off), got {getattr(self, name)}")
        if self.max_steps < 0:
            raise ValueError(f"max_steps must be >= 0 (0: evaluate only), got {self.max_steps}")
        if self.max_steps == 0 and self.test_stride == 0:
            raise ValueError("max_steps=0 evaluates on the test split only: test_stride must "
                             "be >= 1, got 0")
        require_finite(self, "learning_rate", "max_grad_norm", "weight_decay", "lora_dropout")
        for name in ("learning_rate", "max_grad_norm"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.warmup_steps < 0 or self.weight_decay < 0 or not 0 <= self.lora_dropout < 1:
            raise ValueError("warmup_steps and weight_decay must be >= 0, lora_dropout in [0, 1)")
        for name, kind in (("mode", Mode), ("mixed_precision", Precision),
                           ("eval_schedule", EvalSchedule)):
            if getattr(self, name) not in get_args(kind):
                raise ValueError(f"{name} must be one of {get_args(kind)}, "
                                 f"got {getattr(self, name)!r}")

    def validates_at(self, step: int) -> bool:
        """Whether the run validates after `step` optimizer steps (0: the starting weights)."""
        if step == 0:
            return self.eval_schedule == "log"
        if step == self.max_steps:
            return True
        first, last = LOG_SCHEDULE
        if self.eval_schedule == "log" and step <= last:
            return step % first == 0 and (step // first) & (step // first - 1) == 0
        return step % self.eval_every == 0

    @classmethod
    def from_overrides(cls, overrides: Iterable[str], defaults: dict[str, Any] | None = None
                       ) -> FinetuneConfig:
        """The defaults of a config file (dotted keys), then `key=value` overrides."""
        return apply_overrides(apply_overrides(cls(), defaults or {}), list(overrides))

    def settings(self) -> dict[str, str]:
        """Every setting as text, dotted keys (for records, trackers and error messages)."""
        flat: dict[str, str] = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if isinstance(value, ModelChoice):
                flat.update({f"{item.name}.{k}": str(v)
                             for k, v in dataclasses.asdict(value).items()})
            else:
                flat[item.name] = str(value)
        return flat

    def result_settings(self) -> dict[str, str]:
        """The settings that shape the result: what a resumed checkpoint must share."""
        return {k: v for k, v in self.settings().items() if k not in NOT_IN_FINGERPRINT}
