"""A tiny fine-tune in two CPU processes (gloo) against the same run in one process.

`accelerate launch --cpu` starts one process on a single machine; torchrun with
ACCELERATE_USE_CPU=true starts two that Accelerate joins into one data-parallel job.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("accelerate")
pytest.importorskip("transformers")

from hdt_finetune.cli import main  # noqa: E402
from hdt_finetune.finetune.finetune_config import FinetuneConfig  # noqa: E402
from hdt_finetune.finetune.finetune_loop import run_finetune  # noqa: E402
from hdt_finetune.finetune.run_folder import RunFolderError  # noqa: E402

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "patchtst_etth.py"
ARGS = ["model.init=random", "model.size=tiny", "horizon=24", "max_steps=6", "eval_every=3",
        "save_every=3", "val_stride=40", "test_stride=40", "warmup_steps=2",
        "train_data=distill:random:600"]


def test_two_processes_train_together_and_match_one(tmp_path, shared_data_dir, monkeypatch):
    # The set is distilled on demand: by the main process, while the other waits for it.
    monkeypatch.setenv("HDT_CACHE_DIR", str(tmp_path / "cache"))
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    out = tmp_path / "two"
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(RECIPE), *ARGS, "batch_size=8", f"out={out}"],
        env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("RANDOM-INIT MODEL") == 1  # the main process summarises
    two = json.loads((out / "record.json").read_text())
    assert two["cost"]["processes"] == 2
    assert two["batches_per_process"] == [6, 6]  # both processes took part in every step
    assert two["cost"]["samples"] == 6 * 16
    assert len(list((tmp_path / "cache" / "distilled").glob("ETTh1-*"))) == 1

    # The same global batch (16 windows a step) in one process, on the same cached set.
    assert main(["finetune", "--config", "patchtst/base_full_cpu", *ARGS, "batch_size=16",
                 f"out={tmp_path / 'one'}"]) == 0
    one = json.loads((tmp_path / "one" / "record.json").read_text())
    assert one["train_data"]["content_sha256"] == two["train_data"]["content_sha256"]
    assert two["test"]["mse"] == pytest.approx(one["test"]["mse"], rel=1e-3)
    # One schedule step per optimizer step, whatever the process count.
    rates = [[json.loads(line)["lr"] for line in (folder / "metrics.jsonl").read_text()
              .splitlines()] for folder in (out, tmp_path / "one")]
    assert rates[0] == pytest.approx(rates[1]) and len(set(rates[0])) == 6
    # The process count sets the global batch: one process does not resume a two-process run.
    set_folder = two["train_data"]["path"]
    with pytest.raises(RunFolderError, match="processes"):
        run_finetune(FinetuneConfig.from_overrides(
            [*ARGS[:-1], "model.family=patchtst", "model.patch_size=16", "learning_rate=1e-3",
             "batch_size=8", f"train_data={set_folder}", f"out={out}"]))

    # Only the main process wrote our files: one metrics line a step, one record, and no
    # leftovers; each process keeps only its own Accelerate random state.
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 6
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert not [p for p in written if ".tmp" in p]
    assert sorted(p for p in written if "random_states" in p) == [
        f"checkpoints/step_{s}/random_states_{r}.pkl" for s in (3, 6) for r in (0, 1)]
