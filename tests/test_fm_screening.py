"""The screen's choice: scores at equal total FLOPs against full data's validation curve,
the default only once every candidate has run, and records tied to their sets' checksums."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import fm_screening  # noqa: E402
from finetune_cost_arms import SelectionRule  # noqa: E402
from set_recipes import BY_NAME, CANDIDATES, SetRecipe  # noqa: E402

RULE = SelectionRule(learning_rates=(1e-4, 1e-3))
FULL_CURVE = [{"step": 0, "val_mse": 1.0}, {"step": 10, "val_mse": 0.8},
              {"step": 100, "val_mse": 0.5}, {"step": 1000, "val_mse": 0.4}]


def record(dataset, name, lr, val, steps, distill_flops=0.0, curve=None, points=384,
           weights_sha256="w1"):
    return {"dataset": dataset, "arm": name, "learning_rate": lr, "best_val_mse": val,
            "rule": RULE.record(), "weights": "/standin",
            "weights_sha256": weights_sha256,
            "steps": steps, "cost": {"flops": steps * 1e9, "optimizer_steps": steps},
            "distill_flops": distill_flops, "curve": curve or [],
            "train_data": {"kind": "full" if name == "full" else "synthetic",
                           "points": 8640 if name == "full" else points}}


def test_a_set_is_scored_against_full_data_within_its_total_flops():
    records = [record("ETTh1", "full", 1e-3, 0.4, 1000, curve=FULL_CURVE),
               record("ETTh1", "full", 1e-4, 0.45, 1000, curve=FULL_CURVE),
               # 20 steps + 80 steps' worth of distillation: full data had reached 0.5
               record("ETTh1", "hdt", 1e-3, 0.45, 20, distill_flops=80e9),
               record("ETTh1", "hdt", 1e-4, 0.6, 20, distill_flops=80e9),
               record("ETTh1", "hdt_fm", 1e-3, 0.7, 20)]  # one learning rate only
    table = fm_screening.score_table(records, RULE)
    hdt = table["ETTh1"]["hdt"]
    assert hdt["learning_rate"] == 1e-3 and hdt["total_flops"] == 100e9
    assert hdt["full_val_same_total_flops"] == 0.5 and hdt["score"] == pytest.approx(0.9)
    assert hdt["fraction_of_train"] == pytest.approx(384 / 8640)
    # The score's parts: the set against full data's best at its own length (0.4), and the
    # distillation against full data's whole fine-tune (1000 steps of 1e9 FLOPs).
    assert hdt["val_over_full_best"] == pytest.approx(0.45 / 0.4)
    assert hdt["distill_over_full_finetune"] == pytest.approx(0.08)
    # ...and how far full data had got by the set's total FLOPs: the two factors make the score.
    assert hdt["full_best_over_full_same_total_flops"] == pytest.approx(0.4 / 0.5)
    assert hdt["val_over_full_best"] * hdt["full_best_over_full_same_total_flops"] == \
        pytest.approx(hdt["score"])
    assert "hdt_fm" not in table["ETTh1"]  # its grid is not complete
    default, means = fm_screening.choose(table, ("ETTh1",), "hdt")
    assert default == "hdt" and means == {"hdt": pytest.approx(0.9)}
    assert fm_screening.choose(table, ("ETTh1", "ETTm1"), "hdt") == (None, {})
    # Full data's reference is its best within the budget over every learning rate: a
    # faster-starting rate's curve counts though full data's own choice is another.
    fast = [{"step": 0, "val_mse": 1.0}, {"step": 10, "val_mse": 0.44}]
    records[1] = record("ETTh1", "full", 1e-4, 0.45, 1000, curve=fast)
    table = fm_screening.score_table(records, RULE)
    assert table["ETTh1"]["full"]["learning_rate"] == 1e-3
    assert table["ETTh1"]["hdt"]["full_val_same_total_flops"] == 0.44


def test_the_report_names_a_default_only_when_the_screen_is_complete(tmp_path):
    from benchmark_jobs import BenchmarkPaths

    paths = BenchmarkPaths(results=tmp_path / "results", work=tmp_path / "work")
    folder = fm_screening.results(paths) / "records"
    folder.mkdir(parents=True)

    def write(records):
        for r in records:
            path = fm_screening.record_path(paths, r["dataset"], r["arm"], r["learning_rate"])
            path.write_text(json.dumps(r))

    write([record("ETTh1", "full", lr, 0.4, 1000, curve=FULL_CURVE) for lr in (1e-4, 1e-3)])
    write([record("ETTh1", "hdt", lr, 0.45, 20) for lr in (1e-4, 1e-3)])
    fm_screening.report(paths, RULE, ("ETTh1",))
    summary = json.loads((paths.results / "fm_screening_summary.json").read_text())
    assert summary["complete"] is False and summary["default"] is None
    # Every candidate's grid: the HDT variant with the lowest mean score is the default.
    for c in CANDIDATES:
        val = 0.41 if c.name == "hdt_fm" else 0.6
        write([record("ETTh1", c.name, lr, val if c.name != "full" else 0.4, 20 if c.members
                      else 1000, curve=FULL_CURVE) for lr in (1e-4, 1e-3)])
    fm_screening.report(paths, RULE)  # the screen's datasets: ETTm1 has not run
    summary = json.loads((paths.results / "fm_screening_summary.json").read_text())
    assert summary["complete"] is False and summary["default"] is None
    fm_screening.report(paths, RULE, ("ETTh1",))
    summary = json.loads((paths.results / "fm_screening_summary.json").read_text())
    assert summary["complete"] is True and summary["default"] == "hdt_fm"
    markdown = (fm_screening.results(paths) / "report.md").read_text()
    assert "`hdt_fm`" in markdown
    # hdt_fm's set against full data's best (0.4) and HDT's (0.6); nothing distilled here.
    assert "| hdt_fm | 1.025 | 0.500 | 0.683 | 0.000 |" in markdown
    # hdt_fm run again from other weights is never scored against full data's old curve.
    write([record("ETTh1", "hdt_fm", lr, 0.41, 20, weights_sha256="w2") for lr in (1e-4, 1e-3)])
    fm_screening.report(paths, RULE, ("ETTh1",))
    summary = json.loads((paths.results / "fm_screening_summary.json").read_text())
    assert "hdt_fm" not in summary["scores"]["ETTh1"] and summary["default"] is None
    assert summary["configurations"]["hdt"] == summary["configurations"]["condtsf"]


def test_records_count_only_on_the_sets_they_were_made_on(tmp_path):
    path = tmp_path / "r.json"
    job = {"record": str(path), "rule": {"a": 1}, "weights": "random",
           "sets_sha256": ["aa", "bb"]}
    made = {"rule": {"a": 1}, "weights": "random-init",
            "train_data": {"kind": "mix", "content_sha256": ["aa", "bb"]}}
    path.write_text(json.dumps(made))
    assert fm_screening.record_is_current(job)
    assert not fm_screening.record_is_current({**job, "sets_sha256": ["aa", "cc"]})
    assert not fm_screening.record_is_current({**job, "rule": {"a": 2}})


def test_a_set_made_for_a_model_is_named_by_that_model(tmp_path):
    from benchmark_jobs import BenchmarkPaths

    paths = BenchmarkPaths(results=Path("r"), work=Path("w"))
    fm = BY_NAME["hdt_fm"].members[0]
    assert fm.folder(paths, "ETTh1", "/a") != fm.folder(paths, "ETTh1", "/b")
    # A folder of weights is named by its contents: pretrained again, another set.
    from set_recipes import folder_sha256

    folder = tmp_path / "standin"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"one")
    before = fm.folder(paths, "ETTh1", str(folder))
    (folder / "model.safetensors").write_bytes(b"two")
    folder_sha256.cache_clear()  # the cache holds a benchmark run's weights, which never change
    assert fm.folder(paths, "ETTh1", str(folder)) != before
    assert SetRecipe("hdt").folder(paths, "ETTh1", "/a").name == "ETTh1_hdt_M384_seed0"
    assert fm.resolved("/a") == ("fm.source=/a",)


def test_the_wider_grid_shares_the_rule_points_and_scores_apart(tmp_path):
    from finetune_cost_arms import WIDE_GRID

    assert set(RULE.learning_rates) < set(WIDE_GRID.learning_rates)
    full = [record("ETTh1", "full", lr, val, 1000, curve=FULL_CURVE)
            for lr, val in ((1e-4, 0.45), (1e-3, 0.4), (3e-4, 0.42), (3e-3, 0.5))]
    # HDT gains from 3e-4, outside the rule's grid: the main table never offers it.
    hdt = [record("ETTh1", "hdt", lr, val, 20, distill_flops=80e9)
           for lr, val in ((1e-4, 0.6), (1e-3, 0.55), (3e-4, 0.45), (3e-3, 0.7))]
    wider = [{**r, "rule": WIDE_GRID.record()} for r in full + hdt
             if r["learning_rate"] in (3e-4, 3e-3)]
    narrow = [r for r in full + hdt if r["learning_rate"] in RULE.learning_rates]
    records, left_out = fm_screening.comparable(narrow + wider, RULE)
    assert left_out == 0 and len(records) == 8
    table = fm_screening.score_table(records, RULE)
    assert table["ETTh1"]["hdt"]["learning_rate"] == 1e-3
    rows = fm_screening.wide_grid_rows(records, table, ("ETTh1",))["ETTh1"]
    assert rows["hdt"]["rule_learning_rate"] == 1e-3 and rows["hdt"]["wide_learning_rate"] == 3e-4
    assert rows["hdt"]["wide_score"] == pytest.approx(0.45 / 0.5)
    assert rows["full"]["wide_learning_rate"] == 1e-3
    # A run at a shared point counts for either grid; another schedule does not.
    path = tmp_path / "r.json"
    path.write_text(json.dumps({**narrow[0], "weights": "random-init"}))
    job = {"record": str(path), "weights": "random", "sets_sha256": [],
           "rule": WIDE_GRID.record()}
    assert fm_screening.record_is_current(job)
    assert not fm_screening.record_is_current(
        {**job, "rule": {**job["rule"], "warmup_steps": 50}})


def test_the_wider_grid_is_adopted_only_when_it_lowers_the_defaults_mean_score():
    def rows(rule_scores, wide_scores):
        return {d: {"hdt_soft": {"rule_score": r, "wide_score": w}}
                for d, r, w in zip(("ETTh1", "ETTm1"), rule_scores, wide_scores, strict=True)}

    datasets = ("ETTh1", "ETTm1")
    adopted = fm_screening.wide_grid_adopted
    assert adopted(rows((1.0, 1.1), (0.95, 1.1)), "hdt_soft", datasets) is True
    # Better on one dataset, worse in the mean: not adopted.
    assert adopted(rows((1.0, 1.1), (0.95, 1.2)), "hdt_soft", datasets) is False
    # Not judged until the default has both grids on every dataset, or without a default.
    assert adopted(rows((1.0, 1.1), (0.95, None)), "hdt_soft", datasets) is None
    assert adopted(rows((1.0, 1.1), (0.95, 1.0)), None, datasets) is None
    assert adopted(rows((1.0, 1.1), (0.95, 1.0)), "hdt", datasets) is None


def test_the_screen_never_tests_and_still_counts_runs_made_with_a_test(tmp_path):
    """Judged on validation only, the screen's jobs run no test probes and no final test; a
    record made with them (ETTh1's first ones) validated the same way and still counts."""
    from benchmark_jobs import BenchmarkPaths
    from finetune_cost_arms import RULE

    paths = BenchmarkPaths(results=tmp_path / "r", work=tmp_path / "w")
    job = fm_screening.screen_job(paths, fm_screening.SCREEN_RULE, "ETTh1", "small", "random",
                                  BY_NAME["full"], 1e-3, 2)
    assert job["config"]["test_stride"] == 0 and job["config"]["curve_test_stride"] == 0
    tested = {**record("ETTh1", "full", 1e-3, 0.5, 100), "rule": RULE.record(),
              "weights": "random-init", "test": {"mse": 0.4}}
    Path(job["record"]).parent.mkdir(parents=True)
    Path(job["record"]).write_text(json.dumps(tested))
    assert fm_screening.record_is_current(job)
    records, _ = fm_screening.comparable([tested], fm_screening.SCREEN_RULE)
    assert records == [tested]
    # Anything that changes what is trained or validated still makes another rule.
    other = {**tested, "rule": {**tested["rule"], "val_stride": 1}}
    assert fm_screening.comparable([other], fm_screening.SCREEN_RULE)[0] == []


def test_the_lever_table_leaves_a_cell_blank_where_a_dataset_lacks_hdt_or_the_candidate():
    def row(val, factor):
        return {"val_mse": val, "val_over_full_best": val / 0.4,
                "full_best_over_full_same_total_flops": factor,
                "distill_over_full_finetune": 0.025}

    table = {"ETTh1": {"full": row(0.4, 1.0), "hdt": row(0.5, 0.9),
                       "hdt_soft": row(0.45, 0.8)},
             "ETTm1": {"full": row(0.4, 1.0), "hdt_soft": row(0.44, 0.9)}}
    lines = fm_screening._lever_lines(table, ("ETTh1", "ETTm1"))
    assert "| hdt_soft | 1.125 | 0.800 | 0.900 | 0.025 | 1.100 | 0.900 |  | 0.025 |" in lines
    assert "| hdt | 1.250 | 0.900 | 1.000 | 0.025 |  |  |  |  |" in lines
    assert not any(line.startswith("| full |") for line in lines)
    assert fm_screening._lever_lines({"ETTh1": {"hdt": row(0.5, 0.9)}}, ("ETTh1",)) == []
