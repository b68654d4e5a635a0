"""The fine-tuning benchmark's arms and selection rule, defined once: the runner
(finetune_cost.py) runs them and the report (finetune_cost_report.py) reads them."""

from __future__ import annotations

from dataclasses import dataclass, replace

from set_recipes import BY_NAME, SetRecipe

# The HDT variant the screen chose (benchmarks/fm_screening.py; its summary's "default"),
# committed before the five-dataset run; None until the screen has run. Once set, the
# benchmark adds its arm and full data at its budgets.
DEFAULT_VARIANT: str | None = "hdt_soft_b05"
# The best CondTSF variant by the same screen (its summary's "best_condtsf"): the baseline
# that gets the same wider learning-rate grid as the default (lever 4).
BEST_CONDTSF_VARIANT: str | None = "condtsf_M4096"
# Lever 4's verdict from the same screen (its summary's "wide_grid"."adopted"): whether the
# five-dataset run offers every arm the wider learning-rate grid. None until judged.
WIDE_GRID_ADOPTED: bool | None = False


@dataclass(frozen=True)
class ArmSpec:
    name: str
    label: str
    trained: bool  # False: evaluated as loaded (zero-shot)
    sets: tuple[SetRecipe, ...] = ()  # a set arm's member sets (set_recipes.py)
    # A compute-matched full-data arm: (the set arm, "train" for its fine-tuning steps or
    # "total" for those plus its distillation's FLOPs in full-data steps) sets max_steps.
    matched: tuple[str, str] | None = None
    # At most this many training seeds (None: the benchmark's `seeds`), where compute is cut.
    max_seeds: int | None = None


def default_arms(variant: str | None) -> tuple[ArmSpec, ...]:
    """The chosen variant's arm and full data at its two budgets (none for plain HDT, which
    has them already)."""
    if variant is None or variant == "hdt":
        return ()
    return (
        ArmSpec(variant, f"default: {variant}", trained=True, sets=BY_NAME[variant].members),
        ArmSpec(f"full_at_{variant}_train", f"full data, {variant}'s steps", trained=True,
                matched=(variant, "train")),
        ArmSpec(f"full_at_{variant}_total",
                f"full data, {variant}'s steps + distillation FLOPs", trained=True,
                matched=(variant, "total")),
    )


ARMS = (
    ArmSpec("zeroshot", "zero-shot", trained=False),
    ArmSpec("random_init", "zero-shot, random-init model", trained=False),
    ArmSpec("full", "full data", trained=True),
    ArmSpec("hdt", "HDT set", trained=True, sets=(SetRecipe("hdt"),)),
    ArmSpec("condtsf", "CondTSF set", trained=True, sets=(SetRecipe("condtsf"),)),
    # Two seeds: the compute plan cuts seeds before datasets, and Random first.
    ArmSpec("random", "Random subset", trained=True, sets=(SetRecipe("random"),),
            max_seeds=2),
    ArmSpec("full_at_hdt_train", "full data, HDT's steps", trained=True,
            matched=("hdt", "train")),
    ArmSpec("full_at_hdt_total", "full data, HDT's steps + distillation FLOPs", trained=True,
            matched=("hdt", "total")),
    ArmSpec("full_at_condtsf_train", "full data, CondTSF's steps", trained=True,
            matched=("condtsf", "train")),
    ArmSpec("full_at_condtsf_total", "full data, CondTSF's steps + distillation FLOPs",
            trained=True, matched=("condtsf", "total")),
    *default_arms(DEFAULT_VARIANT),
)
DEFAULT_ARM = DEFAULT_VARIANT or "hdt"  # the arm the targets are judged on
LABELS = {arm.name: arm.label for arm in ARMS}
MATCHED_ARMS = {arm.name: arm.matched for arm in ARMS if arm.matched}
TRAINED_ARMS = tuple(arm.name for arm in ARMS if arm.trained and not arm.matched)
ZERO_SHOT_ARMS = tuple(arm.name for arm in ARMS if not arm.trained)
SET_ARMS = {arm.name: arm.sets for arm in ARMS if arm.sets}


def arm_seeds(arm: str, seeds: int) -> int:
    """How many training seeds `arm` runs when the benchmark asks for `seeds`."""
    cap = next(spec.max_seeds for spec in ARMS if spec.name == arm)
    return seeds if cap is None else min(seeds, cap)


@dataclass(frozen=True)
class SelectionRule:
    """How every arm's hyper-parameters are chosen, on the validation split only, the same
    for every arm: one learning-rate grid and warm-up, one validation schedule in optimizer
    steps (the starting weights, 10, 20, ..., 320, then every eval_every), one validation
    subset and patience, one step cap. The schedule's length is what early stopping picks
    on that schedule, never a number of epochs (which favoured the small sets: they
    validated every 11 steps, full data every 200)."""

    learning_rates: tuple[float, ...] = (1e-4, 1e-3)
    eval_schedule: str = "log"  # FinetuneConfig.eval_schedule
    eval_every: int = 200  # after the log-spaced points
    patience: int = 3  # stop after 3 validations without improvement; keep the best
    # A compute cap for this CPU, the same for every arm: a fine-tune that has not stopped
    # by then would cost more, so a reported cost reduction is then a lower bound.
    max_steps: int = 2000
    val_stride: int = 8  # every 8th validation window
    curve_test_stride: int = 8  # test probes at every validation: curves, time to accuracy
    test_stride: int = 1  # the selected model's test: every window
    batch_size: int = 32
    warmup_steps: int = 10

    def record(self) -> dict:
        """The rule as a record stores it (JSON: lists, not tuples)."""
        return {**self.__dict__, "learning_rates": list(self.learning_rates)}

    def schedule(self) -> dict[str, object]:
        return {"eval_schedule": self.eval_schedule, "eval_every": self.eval_every,
                "max_steps": self.max_steps, "save_every": self.eval_every,
                "curve_test_stride": self.curve_test_stride}

    @staticmethod
    def choose(best_val_by_lr: dict[float, float]) -> float:
        """The learning rate whose seed-0 run had the lowest best validation MSE."""
        return min(best_val_by_lr, key=best_val_by_lr.get)


RULE = SelectionRule()
# Issue 17's lever 4, a schedule for small sets. The length (the epochs) is already chosen by
# the rule's step schedule and patience; this widens the learning-rate grid between and
# beyond its two points. The screen offers it to full data and to the HDT, CondTSF and Random
# sets alike (equal tuning budgets) and reports whether it changes any arm's standing.
WIDE_GRID = replace(RULE, learning_rates=(1e-4, 3e-4, 1e-3, 3e-3))
# The fine-tuning benchmark's rule: the screen's verdict on the grid, for every arm.
BENCHMARK_RULE = WIDE_GRID if WIDE_GRID_ADOPTED else RULE
# A smoke run checks the program end to end in a few minutes, nothing more.
SMOKE_RULE = SelectionRule(learning_rates=(1e-3,), max_steps=12, eval_every=20,
                           val_stride=400, curve_test_stride=400, test_stride=400,
                           batch_size=8)
