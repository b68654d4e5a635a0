"""The distill-and-evaluate demo behind `make distill-demo`: one method against full data."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from hdt_finetune.data.prepared_data import DataSpec
from hdt_finetune.distillation import DistillConfig, run_distillation
from hdt_finetune.evaluation.evaluate_command import EvaluateConfig, run_evaluation
from hdt_finetune.recipe_configs import load_config_file
from hdt_finetune.typed_overrides import apply_overrides

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoConfig:
    out: Path = Path("runs/demo")
    dataset: str = "ETTh1"
    method: str = "random"
    length: int = 384
    backbone: str = "dlinear"
    seeds: int = 2


def run_demo(config: DemoConfig) -> dict:
    data = DataSpec(config.dataset)
    set_dir = config.out / f"{Path(config.dataset).stem}_{config.method}_M{config.length}"
    run_distillation(DistillConfig(data=data, method=config.method, out=set_dir,
                                   length=config.length, overwrite=True))
    rows = {}
    for label, source in (("full data", {"full": True}), (config.method, {"synthetic": set_dir})):
        report = run_evaluation(EvaluateConfig(
            data=data, backbones=(config.backbone,), seeds=config.seeds, overwrite=True,
            json_path=config.out / f"{label.replace(' ', '_')}.json", **source))
        rows[label] = report["results"][0]
    print(f"\n{config.dataset} 96->96, {config.backbone}, {config.seeds} seeds")
    print(f"{'training data':<22}{'rows':>8}{'test MSE':>18}{'train s':>10}")
    for label, row in rows.items():
        n_rows = config.length if label != "full data" else "train"
        print(f"{label:<22}{n_rows:>8}{row['mse_mean']:>11.4f} ± {row['mse_std']:.3f}"
              f"{row['wall_s']:>10.1f}")
    return rows


def run_demo_recipe(config_name: str, argv: list[str]) -> dict:
    """The demo recipe's entry point: its config, then `key=value` overrides."""
    from hdt_finetune.cli import run_or_exit

    def build_and_run() -> dict:
        defaults = apply_overrides(DemoConfig(), load_config_file(config_name))
        return run_demo(apply_overrides(defaults, argv))

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return run_or_exit(build_and_run)
