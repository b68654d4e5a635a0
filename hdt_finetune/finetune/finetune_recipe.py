"""What every fine-tuning recipe does after building its config: make sure its training data
exists, run the fine-tune, report.

`train_data=distill:METHOD[:M]` asks for a set distilled from the config's dataset (seed 0,
M = 384 by default), made once and reused from `runs/distilled/`. Distillation happens here,
in the recipe, on the main process; the trainer itself only reads the folder.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from pathlib import Path

from hdt_finetune.finetune.finetune_config import FinetuneConfig
from hdt_finetune.finetune.finetune_loop import run_finetune

log = logging.getLogger(__name__)

DISTILLED_ROOT = Path("runs/distilled")


def resolve_train_data(config: FinetuneConfig) -> FinetuneConfig:
    if not config.train_data.startswith("distill:"):
        return config
    from accelerate import PartialState

    from hdt_finetune.distillation import DistillConfig, run_distillation

    _, method, *rest = config.train_data.split(":")
    length = int(rest[0]) if rest else 384
    folder = DISTILLED_ROOT / f"{Path(config.dataset).stem}_{method}_M{length}_seed0"
    with PartialState().main_process_first():
        if not folder.exists():
            log.info("distilling %s with %s (M=%d) into %s", config.dataset, method, length,
                     folder)
            run_distillation(DistillConfig(dataset=config.dataset, method=method, out=folder,
                                           length=length,
                                           settings=_settings(config)))
        else:
            log.info("reusing the distilled set %s", folder)
    return dataclasses.replace(config, train_data=str(folder))


def _settings(config: FinetuneConfig):
    from hdt_finetune.distill.settings import DistillSettings

    return DistillSettings(context_length=config.context_length, horizon=config.horizon)


def run_recipe(overrides: list[str], **defaults: object) -> dict:
    """Build the config from `key=value` overrides over the recipe's defaults and run it.
    Bad input (an unknown key, unreachable weights, a foreign checkpoint, missing data) ends
    the program with one line saying what to do, not a traceback."""
    from accelerate import PartialState

    from hdt_finetune.data.data_cache import DatasetUnavailableError
    from hdt_finetune.finetune.model_source import ModelUnavailableError
    from hdt_finetune.finetune.training_checkpoint import CheckpointError

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        config = resolve_train_data(FinetuneConfig.from_overrides(overrides, **defaults))
        record = run_finetune(config)
    except (ValueError, ModelUnavailableError, CheckpointError, DatasetUnavailableError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    if PartialState().is_main_process:
        summary = {
            "model": record["model"], "weights": record["weights"], "mode": record["mode"],
            "train_data": record["train_data"], "steps": record["steps"],
            "test": record["test"], "cost": record["cost"],
            "record": str(Path(config.out) / "record.json"),
        }
        if record["weights"] == "random-init":
            summary["note"] = ("RANDOM-INIT MODEL: no pretrained weights were used; pass "
                               "model_source=FOLDER for real ones")
        print(json.dumps(summary, indent=2))
    return record
