"""`hdt evaluate`: evaluate a synthetic set (or the full train split) across backbones."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hdt_finetune.atomic_files import atomic_write_json
from hdt_finetune.data.prepared_data import prepare_data
from hdt_finetune.data.table_loading import RepairPolicy
from hdt_finetune.evaluation.harness import TrainingRecipe, evaluate_backbone
from hdt_finetune.provenance import git_commit, machine, package_versions, peak_rss_mb
from hdt_finetune.synthetic import check_same_source, read_synthetic_set


@dataclass(frozen=True)
class EvaluateConfig:
    dataset: str | None
    synthetic: Path | None = None
    full: bool = False
    backbones: tuple[str, ...] = ("dlinear",)
    seeds: int = 5
    context_length: int = 96
    horizon: int = 96
    max_steps: int | None = None
    learning_rate: float | None = None
    early_stopping: bool = True
    json_path: Path | None = None
    repair: RepairPolicy = field(default_factory=RepairPolicy)
    date_column: str = "date"
    columns: list[str] | None = None

    def __post_init__(self) -> None:
        from hdt_finetune.backbones import BACKBONE_NAMES

        if (self.synthetic is None) == (not self.full):
            raise ValueError("give exactly one of --synthetic DIR or --full")
        if self.dataset is None and self.synthetic is None:
            raise ValueError("--full needs --dataset")
        if self.seeds < 1:
            raise ValueError(f"--seeds must be >= 1, got {self.seeds}")
        unknown = [b for b in self.backbones if b not in BACKBONE_NAMES]
        if unknown or not self.backbones:
            raise ValueError(
                f"unknown backbone(s) {unknown}; choose from {', '.join(BACKBONE_NAMES)}"
            )

    def recipe(self) -> TrainingRecipe:
        overrides: dict[str, Any] = {}
        if self.max_steps is not None:
            overrides["max_steps"] = self.max_steps
        if self.learning_rate is not None:
            overrides["learning_rate"] = self.learning_rate
        return TrainingRecipe(context_length=self.context_length, horizon=self.horizon,
                              early_stopping=self.early_stopping, **overrides)


def run_evaluation(config: EvaluateConfig) -> dict[str, Any]:
    synthetic = read_synthetic_set(config.synthetic) if config.synthetic else None
    dataset = config.dataset or (synthetic.manifest["source"]["path"] if synthetic else None)
    data = prepare_data(dataset, config.context_length, config.repair, config.date_column,
                        config.columns)
    if synthetic is not None:
        check_same_source(synthetic.manifest, data, config.synthetic)
        train_values, training = synthetic.values, {
            "kind": "synthetic", "path": str(config.synthetic),
            "method": synthetic.manifest.get("method"), "manifest": synthetic.manifest}
    else:
        train_values, training = data.train, {"kind": "full", "rows": list(data.borders.train)}
    recipe = config.recipe()
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
