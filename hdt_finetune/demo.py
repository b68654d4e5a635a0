"""The distill-and-evaluate demo behind `make demo`: one method against full data on ETTh1."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

from hdt_finetune.distillation import DistillConfig, run_distillation
from hdt_finetune.evaluation.evaluate_command import EvaluateConfig, run_evaluation

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoConfig:
    out: Path
    dataset: str = "ETTh1"
    method: str = "random"
    length: int = 384
    backbone: str = "dlinear"
    seeds: int = 2

    @classmethod
    def from_overrides(cls, overrides: list[str], **defaults) -> DemoConfig:
        """Build from `key=value` strings; an unknown key or a bad value fails naming it."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values = dict(defaults)
        for item in overrides:
            key, sep, raw = item.partition("=")
            if not sep or key not in fields:
                raise SystemExit(f"unknown override {item!r}; keys: {', '.join(fields)}")
            caster = {"out": Path, "length": int, "seeds": int}.get(key, str)
            try:
                values[key] = caster(raw)
            except ValueError:
                raise SystemExit(f"bad value for {key}: {raw!r}") from None
        return cls(**values)


def run_demo(config: DemoConfig) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    set_dir = config.out / f"{config.dataset}_{config.method}_M{config.length}"
    run_distillation(DistillConfig(dataset=config.dataset, method=config.method, out=set_dir,
                                   length=config.length, overwrite=True))
    rows = {}
    for label, source in (("full data", {"full": True}), (config.method, {"synthetic": set_dir})):
        report = run_evaluation(EvaluateConfig(
            dataset=config.dataset, backbones=(config.backbone,), seeds=config.seeds,
            json_path=config.out / f"{label.replace(' ', '_')}.json", **source))
        rows[label] = report["results"][0]
    print(f"\n{config.dataset} 96->96, {config.backbone}, {config.seeds} seeds")
    print(f"{'training data':<22}{'rows':>8}{'test MSE':>18}{'train s':>10}")
    for label, row in rows.items():
        n_rows = config.length if label != "full data" else "train"
        print(f"{label:<22}{n_rows:>8}{row['mse_mean']:>11.4f} ± {row['mse_std']:.3f}"
              f"{row['wall_s']:>10.1f}")
    return rows
