"""The main job's answer in one table: the configured fine-tune (a distilled set, by default),
full data for the same number of optimizer steps, and the model as loaded (zero-shot), each
with its test MSE and cost. The same budget is counted in fine-tuning steps; the set's
distillation cost is shown beside it, not converted (the fine-tuning benchmark does that)."""

from __future__ import annotations

import dataclasses
from typing import Any

from hdt_finetune.finetune.finetune_command import (
    RANDOM_INIT_NOTE,
    build_config,
    run_finetune_command,
)
from hdt_finetune.finetune.finetune_config import FinetuneConfig
from hdt_finetune.finetune.train_data import TrainData

ARMS = ("set", "full_same_steps", "zero_shot")


def run_side_by_side(config: FinetuneConfig) -> dict[str, Any]:
    """Run the three arms into `config.out`/ARM and write `config.out`/side_by_side.json."""
    from hdt_finetune.atomic_files import atomic_write_json
    from hdt_finetune.process_group import ProcessGroup

    if config.test_stride == 0:  # checked before any arm trains
        raise ValueError("the side-by-side table compares test MSE: test_stride must be >= 1, "
                         "got 0")
    records = {"set": run_finetune_command(dataclasses.replace(config, out=config.out / "set"))}
    steps = records["set"]["steps"]
    records["full_same_steps"] = run_finetune_command(dataclasses.replace(
        config, out=config.out / "full_same_steps", train_data=TrainData("full"),
        max_steps=steps))
    records["zero_shot"] = run_finetune_command(dataclasses.replace(
        config, out=config.out / "zero_shot", train_data=TrainData("full"), max_steps=0))
    rows = [row(arm, records[arm]) for arm in ARMS]
    table = {"rows": rows, "weights": records["set"]["weights"],
             "dataset": config.dataset, "model": records["set"]["model"]}
    if ProcessGroup.from_environment().is_main:
        atomic_write_json(config.out / "side_by_side.json", table)
        print(render(table))
    return table


def row(arm: str, record: dict) -> dict[str, Any]:
    source = record["train_data"]
    cost = record["cost"]
    trained = arm != "zero_shot"
    return {"arm": arm, "train_data": (source.get("path") or source.get("kind")) if trained
            else None,
            "steps": record["steps"], "test_mse": record["test"]["mse"],
            "train_s": cost["train_s"], "flops": cost["flops"],
            "distill_wall_s": (source.get("distill_cost") or {}).get("wall_s")}


def render(table: dict) -> str:
    lines = [f"{table['model']} on {table['dataset']} (weights: {table['weights']})",
             f"{'arm':<16} {'steps':>6} {'test MSE':>9} {'train s':>8} {'FLOPs':>9} "
             f"{'distil s':>8}"]
    for r in table["rows"]:
        distil = "" if r["distill_wall_s"] is None else f"{r['distill_wall_s']:.0f}"
        lines.append(f"{r['arm']:<16} {r['steps']:>6} {r['test_mse']:>9.4f} "
                     f"{r['train_s']:>8.1f} {r['flops']:>9.2e} {distil:>8}")
    if table["weights"] == "random-init":
        lines.append(RANDOM_INIT_NOTE)
    return "\n".join(lines)


def side_by_side_from_overrides(config_name: str, overrides: list[str]) -> dict:
    """The main job's runner for `run_recipe`: its config, then the overrides."""
    return run_side_by_side(build_config(config_name, overrides))
