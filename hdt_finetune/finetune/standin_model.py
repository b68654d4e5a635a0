"""The offline stand-in for published Moirai weights: a Moirai pretrained by our own loop on
a corpus that leaves out the dataset it will be evaluated on and that dataset's family
(`family_of`), cached as a folder that `load_moirai` (and `model.source=`) reads like a
downloaded one."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path

from hdt_finetune.atomic_files import atomic_directory
from hdt_finetune.checksums import sha256_of_tree
from hdt_finetune.data.data_cache import cache_root
from hdt_finetune.data.dataset_registry import family_of
from hdt_finetune.finetune.finetune_config import FinetuneConfig
from hdt_finetune.finetune.finetune_loop import run_finetune
from hdt_finetune.finetune.pretraining_corpus import CORPUS_VERSION, GENERATED
from hdt_finetune.finetune.train_data import TrainData

log = logging.getLogger(__name__)

CORPUS_DATASETS = ("ETTh1", "ETTh2", "ETTm1", "ETTm2", "exchange_rate")
STANDIN_FILE = "standin.json"


def standin_corpus(eval_dataset: str) -> list[str]:
    """Every reference dataset outside the evaluated one's family, plus generated series."""
    family = family_of(eval_dataset)
    return [d for d in CORPUS_DATASETS if family_of(d) != family] + [GENERATED]


def build_standin(eval_dataset: str, base: FinetuneConfig, cache: Path | None = None) -> Path:
    """Pretrain (once) and return the stand-in folder for `eval_dataset`.

    `base` supplies the model family, size, window shape and optimisation settings; its data
    fields are replaced: the corpus (train splits only) for training, and the validation
    split of the corpus' first dataset, held back from pretraining and outside the evaluated
    dataset's family, for choosing the checkpoint.
    """
    corpus = standin_corpus(eval_dataset)
    family = family_of(eval_dataset)
    name = (f"{base.model.family}-{base.model.size}-without-{family.replace(' ', '_')}-"
            f"corpus{CORPUS_VERSION}-"
            f"{base.context_length}x{base.horizon}-steps{base.max_steps}-"
            f"lr{base.learning_rate:g}-seed{base.seed}")
    folder = (cache or cache_root() / "standin") / name
    if (folder / STANDIN_FILE).exists():
        log.info("stand-in %s from the cache", folder)
        return folder
    run = folder.with_name(f"{name}.run")
    config = replace(base, model=replace(base.model, init="random", source=None),
                     dataset=corpus[0], train_data=TrainData("corpus", parts=tuple(corpus)),
                     mode="full", out=run)
    record = run_finetune(config)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    # The pretraining curve: every validation, and the training loss every 50 steps.
    curve = [row for row in rows if "val_mse" in row or row["step"] % 50 == 0]
    with atomic_directory(folder, overwrite=True) as tmp:
        shutil.copytree(run / "model", tmp, dirs_exist_ok=True)
        model_sha256 = sha256_of_tree(tmp)  # the model files, before the record joins them
        (tmp / STANDIN_FILE).write_text(json.dumps({
            "what": f"{base.model.family}-{base.model.size} pretrained by hdt_finetune on a "
                    f"corpus without {eval_dataset}'s family ({family})",
            "excluded_family": family,
            "corpus": record["train_data"], "steps": record["steps"],
            "validation": {"dataset": corpus[0], "mse": record["best_val_mse"]},
            "cost": record["cost"],
            # Pretraining on another machine gives other bits (float rounding differs): this
            # shows it. Records count by the whole folder's checksum (weights_sha256).
            "model_files_sha256": model_sha256,
            "curve": curve,
        }, indent=2))
    shutil.rmtree(run, ignore_errors=True)
    return folder
