"""`hdt evaluate`: evaluate a training set (or the full train split) across backbones."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hdt_finetune.atomic_files import atomic_write_json, check_writable
from hdt_finetune.data.prepared_data import DataSpec, prepare_data
from hdt_finetune.evaluation.harness import TrainingRecipe, evaluate_backbone
from hdt_finetune.provenance import git_commit, machine, package_versions, peak_rss_mb
from hdt_finetune.synthetic import (
    SyntheticSetError,
    check_usable_with,
    read_synthetic_set,
    source_spec,
)


@dataclass(frozen=True)
class EvaluateConfig:
    data: DataSpec | None  # None: the data the set was made from (its manifest says)
    synthetic: Path | None = None
    full: bool = False
    backbones: tuple[str, ...] = ("dlinear",)
    seeds: int = 5
    recipe: TrainingRecipe = field(default_factory=TrainingRecipe)
    json_path: Path | None = None
    overwrite: bool = False

    def __post_init__(self) -> None:
        from hdt_finetune.backbones import BACKBONE_NAMES

        if (self.synthetic is None) == (not self.full):
            raise ValueError("give exactly one of --synthetic DIR or --full")
        if self.data is None and self.synthetic is None:
            raise ValueError("--full needs --dataset")
        if self.seeds < 1:
            raise ValueError(f"--seeds must be >= 1, got {self.seeds}")
        unknown = [b for b in self.backbones if b not in BACKBONE_NAMES]
        if unknown or not self.backbones:
            raise ValueError(
                f"unknown backbone(s) {unknown}; choose from {', '.join(BACKBONE_NAMES)}"
            )
        if self.json_path is not None:
            if Path(self.json_path).exists() and not self.overwrite:
                raise FileExistsError(f"{self.json_path} already exists; choose another --json "
                                      "or pass --overwrite")
            check_writable(self.json_path)


def run_evaluation(config: EvaluateConfig) -> dict[str, Any]:
    recipe = config.recipe
    synthetic = read_synthetic_set(config.synthetic) if config.synthetic else None
    if synthetic is not None and synthetic.scaling_kind == "per_series":
        raise SyntheticSetError(
            f"{config.synthetic} carries per-series scaling (a corpus set): its series are not "
            "a dataset's channels, which the backbones here train on. Fine-tune on it with "
            "`hdt finetune` instead")
    spec = config.data or source_spec(synthetic)
    data = prepare_data(spec, recipe.context_length)
    if synthetic is not None:
        check_usable_with(synthetic, data)
        train_values, training = synthetic.values, {"kind": "synthetic",
                                                    **synthetic.describe()}
    else:
        train_values, training = data.train, data.train_split_record()
    results = [
        evaluate_backbone(train_values, data, backbone, list(range(config.seeds)), recipe)
        for backbone in config.backbones
    ]
    report = {
        "dataset": {"name": data.name, "source": data.source, "sha256": data.sha256},
        "training_data": training,
        "recipe": asdict(recipe),
        "results": [r.to_dict() for r in results],
        "peak_rss_mb": peak_rss_mb(),
        "versions": package_versions(),
        "git": git_commit(),
        "machine": machine(),
    }
    if config.json_path is not None:
        atomic_write_json(config.json_path, report)
    return report
