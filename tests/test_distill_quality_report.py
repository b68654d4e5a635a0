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


def test_a_variant_reports_under_its_name_and_the_quality_target_is_judged(tmp_path):
    records = tmp_path / "distill_quality" / "records"
    records.mkdir(parents=True)
    rows = []
    for dataset in ("ETTh1", "ETTh2", "ETTm1", "ETTm2", "exchange_rate"):
        for backbone in distill_quality.BACKBONES:
            rows += [record(dataset, "condtsf", backbone, 0, [0.45, 0.45]),
                     record(dataset, "hdt", backbone, 0, [0.50, 0.50]),
                     {**record(dataset, "hdt_soft", backbone, 0, [0.39, 0.39]),
                      "variant": "hdt_soft_b05"}]
    for i, row in enumerate(rows):
        (records / f"{i}.json").write_text(json.dumps(row))
    distill_quality.report(BenchmarkPaths(results=tmp_path, work=tmp_path / "work"))
    summary = json.loads((tmp_path / "distill_quality_summary.json").read_text())
    assert set(summary["ETTh1"]) == {"condtsf", "hdt", "hdt_soft_b05"}
    assert distill_quality.quality_target(summary, "hdt_soft_b05")[0] == "met"
    assert distill_quality.quality_target(summary, "hdt")[0] == "missed"
    summary["ETTh1"]["hdt_soft_b05"]["mse_mean_cross_arch"] = 0.41  # below CondTSF, > 0.400
    assert distill_quality.quality_target(summary, "hdt_soft_b05")[0] == "missed"
    del summary["ETTm2"]["hdt_soft_b05"], summary["ETTh1"]["hdt_soft_b05"]
    assert distill_quality.quality_target(summary, "hdt_soft_b05")[0] == "not met so far"
    report = (tmp_path / "distill_quality" / "report.md").read_text()
    assert "- hdt: **missed**" in report
    held_out = distill_quality.held_out_means(summary)["hdt_soft_b05"]
    assert held_out["tuned_on"] == list(distill_quality.VARIANT_TUNED_ON)


def test_only_a_one_set_hdt_variant_is_distilled_as_a_variant(tmp_path):
    paths = BenchmarkPaths(results=tmp_path, work=tmp_path / "work")
    cells = distill_quality.variant_cells(paths, ["ETTh1"], ["hdt_soft_b05"])
    assert [c["seed"] for c in cells] == list(range(distill_quality.DISTILL_SEEDS))
    assert {c["method"] for c in cells} == {"hdt_soft"} and cells[0]["variant"] == "hdt_soft_b05"
    assert cells[0]["settings"] == ["value_beta=0.5"] and cells[0]["set"] != cells[1]["set"]
    for wrong in ("fewshot+hdt_soft", "condtsf", "hdt_M1536"):
        with pytest.raises(SystemExit, match="not a one-set HDT variant"):
            distill_quality.variant_cells(paths, ["ETTh1"], [wrong])


def test_a_sweep_plot_the_records_no_longer_make_is_removed(tmp_path):
    records = tmp_path / "distill_quality" / "records"
    records.mkdir(parents=True)
    for i, backbone in enumerate(distill_quality.BACKBONES):  # one length: no sweep to plot
        (records / f"{i}.json").write_text(json.dumps(record("ETTh1", "hdt", backbone, 0,
                                                             [0.3, 0.3])))
    stale = tmp_path / "distill_quality" / "mse_vs_length.png"
    stale.write_bytes(b"an older run's sweep")
    distill_quality.report(BenchmarkPaths(results=tmp_path, work=tmp_path / "work"))
    assert not stale.exists()
    assert "mse_vs_length" not in (tmp_path / "distill_quality" / "report.md").read_text()


def test_the_report_says_which_commits_made_its_records_and_how_many_ran_at_a_time(
        tmp_path):
    records = tmp_path / "distill_quality" / "records"
    records.mkdir(parents=True)
    for i, backbone in enumerate(distill_quality.BACKBONES):
        row = {**record("ETTh1", "hdt", backbone, 0, [0.3, 0.3]),
               "git": {"sha": f"{'ab' if i else 'cd'}12345678"}}
        if i:  # the first record comes from before concurrency was recorded
            row["concurrent_runs"] = 2
        (records / f"{i}.json").write_text(json.dumps(row))
    distill_quality.report(BenchmarkPaths(results=tmp_path, work=tmp_path / "work"))
    markdown = (tmp_path / "distill_quality" / "report.md").read_text()
    assert ("Records: 3, from commit(s) ab12345, cd12345; runs at a time: [2] (1 records "
            "made before it was recorded), one thread each.") in markdown
