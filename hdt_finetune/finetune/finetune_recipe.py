"""What every fine-tuning recipe does after building its config: run it and report."""

from __future__ import annotations

import json
import logging

from hdt_finetune.finetune.finetune_config import FinetuneConfig
from hdt_finetune.finetune.finetune_loop import run_finetune


def run_recipe(config: FinetuneConfig) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from accelerate import PartialState

    record = run_finetune(config)
    if PartialState().is_main_process:
        summary = {
            "model": record["model"], "weights": record["weights"], "mode": record["mode"],
            "train_data": record["train_data"]["kind"], "steps": record["steps"],
            "test": record["test"], "wall_s": round(record["cost"]["wall_s"], 1),
            "flops": record["cost"]["flops"], "processes": record["cost"]["processes"],
        }
        print(json.dumps(summary, indent=2))
    return record
