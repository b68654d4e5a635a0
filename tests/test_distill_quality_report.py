"""The distillation-quality report over distillation seeds, and its held-out view."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import distill_quality  # noqa: E402
from benchmark_jobs import BenchmarkPaths  # noqa: E402


def record(dataset, method, backbone, dseed, mses):
    return {"dataset": dataset, "method": method, "backbone": backbone, "length": 384,
            "distill_seed": dseed, "distill_cost": {"wall_s": 10.0 + dseed},
            "seeds": [{"mse": m} for m in mses]}


def test_the_std_covers_distillation_and_training_seeds_and_tuning_datasets_are_named(
        tmp_path):
    records = tmp_path / "distill_quality" / "records"
    records.mkdir(parents=True)
    rows = []
    for dataset, shift in (("ETTh1", 0.0), ("exchange_rate", 1.0)):
        for backbone in distill_quality.BACKBONES:
            rows += [record(dataset, "hdt", backbone, 0, [0.30 + shift, 0.32 + shift]),
                     record(dataset, "hdt", backbone, 1, [0.40 + shift, 0.42 + shift]),
                     record(dataset, "random", backbone, 0, [0.50 + shift, 0.50 + shift])]
    for i, row in enumerate(rows):
        (records / f"{i}.json").write_text(json.dumps(row))
    distill_quality.report(BenchmarkPaths(results=tmp_path, work=tmp_path / "work"))
    summary = json.loads((tmp_path / "distill_quality_summary.json").read_text())
    hdt = summary["ETTh1"]["hdt"]
    assert hdt["mse_mean_cross_arch"] == pytest.approx(0.36)
    assert hdt["distill_seeds"] == 2 and hdt["distill_wall_s"] == pytest.approx(10.5)
    markdown = (tmp_path / "distill_quality" / "report.md").read_text()
    spread = statistics.stdev([0.30, 0.32, 0.40, 0.42])  # both kinds of seed, not one
    assert f"| ETTh1 | hdt | 384 | 2 | 0.3600 ± {spread:.4f} |" in markdown
    means = distill_quality.held_out_means(summary)
    # HDT was tuned on ETTh1: its held-out mean is exchange_rate's alone.
    assert means["hdt"]["all"] == pytest.approx((0.36 + 1.36) / 2)
    assert means["hdt"]["not_tuned_on"] == pytest.approx(1.36)
    assert means["random"]["not_tuned_on"] == pytest.approx(1.0)
    assert means["hdt"]["datasets_tuned_on_by_none"] == ["exchange_rate"]
    assert "| hdt | ETTh1, ETTh2, ETTm2 | 0.8600 | 1.3600 | 1.3600 |" in markdown


def test_an_older_record_of_the_same_set_is_never_mixed_in(tmp_path):
    records = tmp_path / "distill_quality" / "records"
    records.mkdir(parents=True)
    old = record("ETTh1", "hdt", "dlinear", 0, [0.3] * 5)  # the older naming, five seeds
    (records / "ETTh1__hdt__M384__dlinear.json").write_text(json.dumps(old))
    (records / "ETTh1__hdt__M384__dlinear__dseed0.json").write_text(json.dumps(
        record("ETTh1", "hdt", "dlinear", 0, [0.4, 0.4])))
    with pytest.raises(SystemExit, match="ETTh1__hdt__M384__dlinear__dseed0.json and "
                                         "ETTh1__hdt__M384__dlinear.json hold the same set"):
        distill_quality.report(BenchmarkPaths(results=tmp_path, work=tmp_path / "work"))


def test_rows_of_different_recipes_or_unequal_distillation_seeds_are_not_pooled(tmp_path):
    records = tmp_path / "distill_quality" / "records"
    records.mkdir(parents=True)
    rows = [record("ETTh1", "hdt", b, k, [0.3, 0.3]) for b in distill_quality.BACKBONES
            for k in (0, 1)]
    rows = rows[:-1]  # xPatch's second distillation seed has not run (or failed)
    for i, row in enumerate(rows):
        (records / f"{i}.json").write_text(json.dumps(row))
    paths = BenchmarkPaths(results=tmp_path, work=tmp_path / "work")
    distill_quality.report(paths)
    assert "ETTh1" not in json.loads((tmp_path / "distill_quality_summary.json").read_text())
    (records / "9.json").write_text(json.dumps(record("ETTh1", "hdt", "xpatch", 1, [0.3] * 5)))
    with pytest.raises(SystemExit, match="ETTh1 hdt 384 differ in their training seeds"):
        distill_quality.report(paths)
