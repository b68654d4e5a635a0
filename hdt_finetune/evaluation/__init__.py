"""Evaluation harness: train fresh backbones on a training series, test on the real test split."""

from hdt_finetune.evaluation.harness import (
    BackboneResult,
    SeedResult,
    TrainingRecipe,
    evaluate_backbone,
)

__all__ = ["BackboneResult", "SeedResult", "TrainingRecipe", "evaluate_backbone"]
