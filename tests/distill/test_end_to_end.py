"""The real command line on a tiny noisy corpus, and the check that HDT at its default
settings teaches DLinear more than Random, its own starting point, on ETTh1."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hdt_finetune.cli import main

# Sizes that make the command seconds long; no method setting is tuned here.
TINY_SETTINGS = ["iterations=150", "top_k=16", "student_steps=10", "student_batch=64",
                 "expert_snapshots=1", "max_start_snapshot=3", "experts.n_experts=3",
                 "experts.snapshots=5", "experts.snapshot_steps=52", "experts.batch_size=32",
                 "horizon=12"]


@pytest.fixture
def noisy_csv(tmp_path):
    rng = np.random.default_rng(0)
    t = np.arange(2400)
    frame = pd.DataFrame({"date": pd.date_range("2020-01-01", periods=2400, freq="h")})
    for c in range(2):
        frame[f"c{c}"] = (np.sin(2 * np.pi * t / 24 + c) + 0.6 * np.sin(2 * np.pi * t / 8 + 2 * c)
                          + rng.standard_normal(2400))
    path = tmp_path / "noisy.csv"
    frame.to_csv(path, index=False)
    return path


def distil_and_evaluate(tmp_path, csv, method: str) -> float:
    out = tmp_path / method
    args = ["distill", "--dataset", str(csv), "--method", method, "--length", "96",
            "context_length=24", "--out", str(out), "--quiet"]
    for setting in TINY_SETTINGS:
        args += ["--set", setting]
    assert main(args) == 0
    assert not (tmp_path / f".{method}.checkpoint").exists()  # cleaned up after success
    report = tmp_path / f"{method}.json"
    assert main(["evaluate", "--synthetic", str(out), "--dataset", str(csv), "context_length=24",
                 "horizon=12", "--seeds", "2", "max_steps=300", "--json", str(report)]) == 0
    return json.loads(report.read_text())["results"][0]["mse_mean"]


def test_distill_then_evaluate_on_the_command_line(tmp_path, noisy_csv, monkeypatch):
    monkeypatch.setenv("HDT_CACHE_DIR", str(tmp_path / "cache"))
    for method in ("random", "hdt"):
        assert np.isfinite(distil_and_evaluate(tmp_path, noisy_csv, method))
    manifest = json.loads((tmp_path / "hdt" / "manifest.json").read_text())
    assert manifest["method_info"]["expert_buffer"]["shape"][0] == 3
    assert manifest["cost"]["wall_s"] >= manifest["method_info"]["expert_buffer"]["wall_s"]
    assert list((tmp_path / "cache" / "experts").iterdir())  # the buffer went to the cache


def test_a_foreign_checkpoint_is_refused_by_the_command_line(tmp_path, noisy_csv, capsys,
                                                            monkeypatch):
    monkeypatch.setenv("HDT_CACHE_DIR", str(tmp_path / "cache"))
    checkpoint = tmp_path / ".set.checkpoint"
    checkpoint.mkdir()
    (checkpoint / "distill_state.pt").write_bytes(b"garbage")
    code = main(["distill", "--dataset", str(noisy_csv), "--method", "hdt", "--length", "96",
                 "context_length=24", "--out", str(tmp_path / "set"), "--quiet",
                 *[arg for s in TINY_SETTINGS for arg in ("--set", s)]])
    assert code == 2
    assert "not a readable distillation checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "set").exists()


def test_hdt_at_its_defaults_beats_its_random_start_on_etth1(tmp_path, shared_data_dir,
                                                             monkeypatch):
    """The paper's setting (ETTh1, M = 384, DLinear), every distillation setting at its
    default, three seeds. Random with a seed is exactly HDT's initial series with that seed,
    so each seed is a paired comparison: distillation must improve test MSE by 10% or more.
    (Measured at 487b762 with 2 training seeds: HDT 0.389-0.395 against Random 0.458-0.563.)"""
    import torch

    from hdt_finetune.data import DataSpec, prepare_data
    from hdt_finetune.distillation import DistillConfig, run_distillation
    from hdt_finetune.evaluation import TrainingRecipe, evaluate_backbone
    from hdt_finetune.methods import random_subset
    from hdt_finetune.synthetic import read_synthetic_set

    monkeypatch.setenv("HDT_CACHE_DIR", str(tmp_path / "cache"))
    data = prepare_data("ETTh1")
    for seed in range(3):
        folder = run_distillation(DistillConfig(data=DataSpec("ETTh1"), method="hdt",
                                                out=tmp_path / f"hdt{seed}", seed=seed,
                                                show_progress=False), data)
        start = torch.as_tensor(random_subset(data.train, 384, seed))
        mse = {name: evaluate_backbone(values, data, "dlinear", [0, 1], TrainingRecipe(),
                                       show_progress=False).mse_mean
               for name, values in (("hdt", read_synthetic_set(folder).values),
                                    ("random", start.numpy()))}
        assert mse["hdt"] < 0.9 * mse["random"], (seed, mse)
