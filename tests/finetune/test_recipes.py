"""Every recipe runs end to end on tiny random-init models (its config is valid), and a tiny
Moirai learns through the Accelerate loop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("accelerate")

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
TINY = ["model.init=random", "model.size=tiny", "train_data=full", "max_steps=2",
        "eval_every=2", "save_every=2", "val_stride=400", "test_stride=400", "num_samples=5"]


def test_the_main_job_shows_the_set_beside_full_data_and_zero_shot(tmp_path, shared_data_dir):
    pytest.importorskip("uni2ts")
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, str(RECIPES / "moirai_etth.py"), *TINY, "max_steps=3",
         "train_data=distill:random:200:0", f"out={out}"],
        env={**os.environ, "OMP_NUM_THREADS": "1", "HDT_CACHE_DIR": str(tmp_path / "cache")},
        capture_output=True, text=True, timeout=300, check=True)
    assert "RANDOM-INIT MODEL" in result.stdout and "full_same_steps" in result.stdout
    rows = {r["arm"]: r for r in json.loads((out / "side_by_side.json").read_text())["rows"]}
    assert set(rows) == {"set", "full_same_steps", "zero_shot"}
    assert rows["set"]["steps"] == rows["full_same_steps"]["steps"] == 3
    assert rows["zero_shot"]["steps"] == 0 and rows["zero_shot"]["flops"] == 0
    assert rows["set"]["distill_wall_s"] is not None and rows["full_same_steps"]["train_data"] \
        == "full"
    for arm in rows:
        assert json.loads((out / arm / "record.json").read_text())["weights"] == "random-init"


@pytest.mark.parametrize("recipe", ["moirai_etth_lora.py", "patchtst_etth.py"])
def test_recipe_runs_and_labels_random_weights(tmp_path, shared_data_dir, recipe):
    if recipe.startswith("moirai"):
        pytest.importorskip("uni2ts")
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, str(RECIPES / recipe), *TINY, f"out={out}"],
        env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
        timeout=300, check=True)
    assert "RANDOM-INIT MODEL" in result.stdout
    record = json.loads((out / "record.json").read_text())
    assert record["weights"] == "random-init" and record["steps"] == 2
    assert (out / "model").is_dir()


def test_hdt_finetune_runs_under_accelerate_launch(tmp_path, shared_data_dir):
    pytest.importorskip("uni2ts")
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
         str(RECIPES.parent / "accelerate_config.yaml"), "-m", "hdt_finetune.cli", "finetune",
         "--config", "moirai/small_full_cpu", "--out", str(out), *TINY],
        env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
        timeout=300, check=True)
    assert "RANDOM-INIT MODEL" in result.stdout
    assert json.loads((out / "record.json").read_text())["model"] == "moirai-tiny"


def test_recipe_rejects_an_unknown_key(tmp_path):
    result = subprocess.run([sys.executable, str(RECIPES / "patchtst_etth.py"), "max_step=3"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "unknown setting 'max_step'" in result.stderr and "Traceback" not in result.stderr


def test_tiny_moirai_loss_falls_in_the_loop(tmp_path):
    pytest.importorskip("uni2ts")
    from hdt_finetune.finetune.finetune_config import FinetuneConfig
    from hdt_finetune.finetune.finetune_loop import run_finetune
    from tests.conftest import sine_frame

    csv = tmp_path / "periodic.csv"
    sine_frame(rows=1500).to_csv(csv, index=False)
    record = run_finetune(FinetuneConfig.from_overrides([
        "model.family=moirai", "model.size=tiny", "model.init=random", f"dataset={csv}",
        "context_length=64", "horizon=32", "model.patch_size=16", "max_steps=40", "eval_every=40",
        "save_every=40", "val_stride=10", "test_stride=10", "learning_rate=3e-3", "batch_size=16",
        "num_samples=10", f"out={tmp_path / 'run'}"]))
    losses = [json.loads(line)["train_loss"]
              for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert sum(losses[-8:]) / 8 < sum(losses[:8]) / 8 - 0.3  # NLL in nats
    assert record["test"]["crps"] > 0 and record["model"] == "moirai-tiny"
