"""The screen's default as an arm of the fine-tuning benchmark: its sets, full data at its
budgets, and a mixed arm's distillation counted in full."""

from __future__ import annotations

import json
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import finetune_cost  # noqa: E402
import finetune_cost_arms  # noqa: E402
from benchmark_jobs import BenchmarkPaths  # noqa: E402
from set_recipes import BY_NAME  # noqa: E402


def test_the_committed_default_is_the_screens_choice():
    summary = BENCHMARKS / "results" / "fm_screening_summary.json"
    chosen = json.loads(summary.read_text()) if summary.exists() else {}
    assert finetune_cost_arms.DEFAULT_VARIANT == chosen.get("default")
    assert finetune_cost_arms.DEFAULT_ARM == (chosen.get("default") or "hdt")
    assert finetune_cost_arms.BEST_CONDTSF_VARIANT == chosen.get("best_condtsf")
    adopted = chosen.get("wide_grid", {}).get("adopted")
    assert finetune_cost_arms.WIDE_GRID_ADOPTED == adopted
    assert finetune_cost_arms.BENCHMARK_RULE == (finetune_cost_arms.WIDE_GRID if adopted
                                                 else finetune_cost_arms.RULE)


def test_a_variant_brings_its_arm_and_full_data_at_its_budgets():
    assert finetune_cost_arms.default_arms(None) == ()
    assert finetune_cost_arms.default_arms("hdt") == ()  # plain HDT has its arms already
    arm, train, total = finetune_cost_arms.default_arms("fewshot+hdt_fm")
    assert arm.sets == BY_NAME["fewshot+hdt_fm"].members and arm.trained
    assert train.matched == ("fewshot+hdt_fm", "train")
    assert total.matched == ("fewshot+hdt_fm", "total")
    # The reference arms keep the set folders their records were made on.
    paths = BenchmarkPaths(results=Path("r"), work=Path("w"))
    assert [f.name for f in finetune_cost.set_folders(paths, "ETTh1", "hdt", "/weights")] \
        == ["ETTh1_hdt_M384_seed0"]


def test_a_mixed_arm_budget_counts_every_members_distillation(tmp_path, monkeypatch):
    recipes = BY_NAME["fewshot+hdt_soft"].members
    monkeypatch.setitem(finetune_cost.SET_ARMS, "mix", recipes)
    paths = BenchmarkPaths(results=tmp_path / "results", work=tmp_path / "work")
    rule = finetune_cost_arms.BENCHMARK_RULE
    folders = finetune_cost.set_folders(paths, "ETTh1", "mix", "hub/id")
    manifests = {}
    for folder, recipe in zip(folders, recipes, strict=True):
        manifests[folder] = {"method": recipe.method, "content_sha256": recipe.method * 8,
                             "cost": {"wall_s": 10.0 if recipe.method == "random" else 50.0}}

    class FakeSet:
        def __init__(self, folder):
            self.manifest = manifests[Path(folder)]
            self.content_sha256 = self.manifest["content_sha256"]

    monkeypatch.setattr("hdt_finetune.synthetic.read_synthetic_set", FakeSet)
    monkeypatch.setattr("hdt_finetune.distill.distill_flops.set_flops",
                        lambda m: type("F", (), {"total": 0.0 if m["method"] == "random"
                                                 else 4e12})())
    shas = [m["content_sha256"] for m in manifests.values()]
    for lr, val in ((1e-4, 0.6), (1e-3, 0.5)):
        for seed in range(3):
            path = finetune_cost.record_path(paths, "ETTh1", "moirai-small", "mix", lr, seed)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({
                "rule": rule.record(), "budget": None, "weights": "hub/id",
                "best_val_mse": val, "steps": 100 + seed,
                "cost": {"flops": 1e12, "optimizer_steps": 100},
                "train_data": {"kind": "mix", "content_sha256": shas}}))
    budget = finetune_cost.matched_budget(paths, rule, "ETTh1", "moirai-small", "hub/id",
                                          ("mix", "total"), 3)
    assert budget["distill_flops"] == 4e12 and budget["distill_wall_s"] == 60.0
    assert budget["steps"] == round(101 + 4e12 / 1e10) and budget["sets_sha256"] == shas
    # A member made again (another checksum): the arm's records no longer count.
    manifests[folders[1]]["content_sha256"] = "other"
    assert finetune_cost.matched_budget(paths, rule, "ETTh1", "moirai-small", "hub/id",
                                        ("mix", "total"), 3) is None
