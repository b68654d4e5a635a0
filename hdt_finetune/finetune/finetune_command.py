"""`hdt finetune` and the recipes: build the config (a recipe config file, then `key=value`
overrides), prepare the dataset once, make a `distill:` training set if asked (cached by a
hash of the dataset's checksum, method, settings and seed), fine-tune, print the summary.

Distillation happens here, before the trainer starts, on the main process; the trainer
itself only reads the set's folder.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from hdt_finetune.data.prepared_data import PreparedData, prepare_data
from hdt_finetune.finetune.finetune_config import FinetuneConfig
from hdt_finetune.finetune.train_data import TrainData
from hdt_finetune.recipe_configs import load_config_file

log = logging.getLogger(__name__)

RANDOM_INIT_NOTE = ("RANDOM-INIT MODEL: no pretrained weights were used; pass "
                    "model.source=FOLDER for real ones")


def build_config(config_name: str | None, overrides: Iterable[str]) -> FinetuneConfig:
    defaults = load_config_file(config_name) if config_name else {}
    return FinetuneConfig.from_overrides(overrides, defaults)


def run_finetune_command(config: FinetuneConfig) -> dict[str, Any]:
    from hdt_finetune.finetune.finetune_loop import run_finetune

    data = prepare_data(config.dataset, config.context_length)
    if config.train_data.kind == "distill":
        folder = distilled_set(config, data)
        config = dataclasses.replace(config, train_data=TrainData.of_set(folder))
    return run_finetune(config, data)


def distilled_set(config: FinetuneConfig, data: PreparedData) -> Path:
    """The set `distill:METHOD:M:SEED` of `data`, made once (main process first) under the
    cache, keyed by everything that shapes it; a damaged cached set is made again."""
    from hdt_finetune.data.data_cache import cache_root
    from hdt_finetune.distill.settings import method_settings
    from hdt_finetune.distillation import DistillConfig, run_distillation
    from hdt_finetune.finetune.run_folder import held_lock
    from hdt_finetune.process_group import ProcessGroup
    from hdt_finetune.run_identity import fingerprint
    from hdt_finetune.synthetic import SyntheticSetError, read_synthetic_set

    wanted = config.train_data
    settings = method_settings(wanted.method, [f"context_length={config.context_length}",
                                               f"horizon={config.horizon}"])
    key = fingerprint({"data": data.sha256, "columns": data.columns,
                       "repair": data.spec.repair, "method": wanted.method,
                       "length": wanted.length, "seed": wanted.seed, "settings": settings},
                      length=16)
    folder = (cache_root() / "distilled"
              / f"{data.name}-{wanted.method}-M{wanted.length}-seed{wanted.seed}-{key}")
    group = ProcessGroup.from_environment()
    if group.is_main:  # one process distils; the others wait, then read the set
        # Another fine-tune may be making the same set: wait for it, then reuse it.
        with held_lock(folder.parent / f".{folder.name}.lock",
                       f"the set {folder.name} is being distilled by {{holder}}", wait=True):
            try:
                read_synthetic_set(folder)
                log.info("reusing the distilled set %s", folder)
            except SyntheticSetError as err:
                if folder.exists():
                    log.warning("the cached set %s is unusable (%s); distilling it again",
                                folder, err)
                log.info("distilling %s with %s (M=%d, seed %d) into %s", data.name,
                         wanted.method, wanted.length, wanted.seed, folder)
                run_distillation(DistillConfig(
                    data=data.spec, method=wanted.method, out=folder, length=wanted.length,
                    seed=wanted.seed, overwrite=folder.exists(), settings=settings), data)
    group.barrier()
    return folder


def finetune_from_overrides(config_name: str | None, overrides: Iterable[str]) -> dict:
    """Build, run and summarise one fine-tune (the `hdt finetune` command)."""
    from hdt_finetune.process_group import ProcessGroup

    config = build_config(config_name, overrides)
    # The processes join once, before anything else, so a set distilled on demand and the
    # Accelerator of the fine-tune agree on who the main process is.
    group = ProcessGroup.from_environment()
    record = run_finetune_command(config)
    if group.is_main:
        print(json.dumps(summary(record, config), indent=2))
    return record


def run_recipe(config_name: str, argv: list[str],
               runner: Callable[[str, list[str]], dict] = finetune_from_overrides) -> dict:
    """A recipe's entry point: its config, then the command line's `key=value` overrides,
    run by `runner` (one fine-tune unless told otherwise)."""
    from hdt_finetune.cli import run_or_exit

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return run_or_exit(runner, config_name, argv)


def summary(record: dict, config: FinetuneConfig) -> dict:
    out = {key: record[key] for key in ("model", "weights", "mode", "train_data", "steps",
                                        "test", "cost")}
    out["record"] = str(config.out / "record.json")
    if record["weights"] == "random-init":
        out["note"] = RANDOM_INIT_NOTE
    return out
