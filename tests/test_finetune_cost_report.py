"""The fine-tuning cost benchmark's selection rule and its generated report (fake records)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import finetune_cost_arms  # noqa: E402
import finetune_cost_report  # noqa: E402
from benchmark_jobs import BenchmarkPaths  # noqa: E402


def test_one_rule_for_every_arm_in_steps_not_epochs():
    from hdt_finetune.finetune.finetune_config import FinetuneConfig

    schedule = finetune_cost_arms.SelectionRule().schedule()
    assert schedule["max_steps"] == 2000 and schedule["curve_test_stride"] == 8
    config = FinetuneConfig.from_overrides([f"{k}={v}" for k, v in schedule.items()])
    steps = [s for s in range(2001) if config.validates_at(s)]
    assert steps[:9] == [0, 10, 20, 40, 80, 160, 320, 400, 600] and steps[-1] == 2000


def fake(arm, lr, seed, val, mse, train_s, flops, distill_s=None):
    return {
        "dataset": "ETTh1", "model": "moirai-small", "arm": arm, "learning_rate": lr,
        "seed": seed, "best_val_mse": val, "weights": "/stand-in",
        "weights_sha256": "0123456789abcdef", "steps": 10,
        "test": {"mse": mse, "mae": mse / 2, "crps": mse / 3},
        "cost": {"train_s": train_s, "wall_s": train_s + 5, "flops": flops},
        "train_data": {"distill_cost": {"wall_s": distill_s}} if distill_s else {},
        "rule": {"learning_rates": [1e-4, 1e-3]},
        "curve": [{"step": 1, "train_loss": 1.0, "val_mse": val},
                  {"step": 2, "train_loss": 0.5}],
        "git": {"sha": "abc", "clean": True}, "machine": {"cpus": 2}, "versions": {"torch": "x"},
    }


def test_the_report_selects_on_validation_and_computes_the_headline(tmp_path, monkeypatch):
    records = tmp_path / "finetune_cost" / "records"
    records.mkdir(parents=True)
    rows = [
        {**fake("random_init", None, 0, None, 0.80, 0, 0), "weights": "random-init"},
        fake("zeroshot", None, 0, None, 0.70, 0, 0),
        # full data: 1e-4 wins on validation although its test MSE is worse
        fake("full", 1e-4, 0, 0.30, 0.41, 1000, 1e15),
        fake("full", 1e-3, 0, 0.35, 0.30, 1000, 1e15),
        fake("full", 1e-4, 1, 0.30, 0.39, 1000, 1e15),
        fake("hdt", 1e-4, 0, 0.50, 0.60, 20, 1e13, distill_s=80),
        fake("hdt", 1e-3, 0, 0.40, 0.42, 10, 1e13, distill_s=80),
        fake("hdt", 1e-3, 1, 0.40, 0.42, 10, 1e13, distill_s=80),
        # The default arm's set is distilled too: its row shows the distillation's seconds.
        fake(finetune_cost_arms.DEFAULT_ARM, 1e-4, 0, 0.55, 0.54, 10, 1e13, distill_s=30),
        fake(finetune_cost_arms.DEFAULT_ARM, 1e-3, 0, 0.45, 0.44, 10, 1e13, distill_s=30),
        # Random at its chosen 1e-3: seeds that straddle HDT's test MSE
        fake("random", 1e-4, 0, 0.55, 0.50, 10, 1e13),
        fake("random", 1e-3, 0, 0.45, 0.40, 10, 1e13),
        fake("random", 1e-3, 1, 0.45, 0.46, 10, 1e13),
    ]
    rows[-1]["concurrent_runs"] = 2  # older records have no field: one run at a time
    # Full data at HDT's budget: 10 steps, and 10 + 5e14 distillation FLOPs / 1e14 per step;
    # the matched runs stop at 10 steps (fake's), short of the 15 of the total-FLOPs budget.
    budget = {"steps": 15, "distill_flops": 5e14, "set_steps": 10, "distill_wall_s": 80}
    for arm, mse in (("full_at_hdt_train", 0.50), ("full_at_hdt_total", 0.45)):
        for lr, val in ((1e-4, 0.6), (1e-3, 0.5)):
            rows.append({**fake(arm, lr, 0, val, mse, 10, 1e15), "budget": budget})
    standin = "/cache/standin/moirai-small-without-ETT_transformer_1-corpus3-96x96"
    for row in rows[1:]:
        row["weights"] = standin
    # A run made with an older stand-in is left out, not averaged in.
    rows.append({**fake("full", 1e-4, 2, 0.30, 0.01, 1000, 1e15), "weights": "/old-standin"})
    for i, row in enumerate(rows):
        (records / f"{i}.json").write_text(json.dumps(row))
    # An older run's plot of a dataset these records lack goes; a file not ours stays.
    stale, foreign = (tmp_path / "finetune_cost" / name
                      for name in ("pareto_ETTm2_moirai-small.png", "sketch.png"))
    stale.write_bytes(b"old")
    foreign.write_bytes(b"mine")
    finetune_cost_report.report(BenchmarkPaths(results=tmp_path, work=tmp_path / "work"))
    assert not stale.exists() and foreign.read_bytes() == b"mine"
    assert (tmp_path / "finetune_cost" / "pareto_ETTh1_moirai-small.png").exists()
    summary = tmp_path / "finetune_cost_summary.json"
    head = json.loads(summary.read_text())["ETTh1"]["moirai-small"]
    assert head["weights"] == standin
    assert head["standin_zeroshot_mse"] == pytest.approx(0.70)
    assert head["mse"]["full"] == pytest.approx(0.40)  # seeds 0 and 1 at lr 1e-4
    assert head["mse"]["hdt"] == pytest.approx(0.42)
    assert head["cost_reduction_wall"] == pytest.approx(100.0)
    assert head["cost_reduction_flops"] == pytest.approx(100.0)
    assert head["mse_increase_pct"] == pytest.approx(5.0)
    assert head["zeroshot_mse_increase_pct"] == pytest.approx(75.0)
    assert head["overall_speedup"] == pytest.approx(1000 / (80 + 10))
    equal = head["equal_compute"]
    assert list(equal) == ["hdt"]  # CondTSF has no matched runs here
    assert equal["hdt"]["full_mse_same_train_flops"] == pytest.approx(0.50)
    assert equal["hdt"]["full_mse_same_total_flops"] == pytest.approx(0.45)
    assert equal["hdt"]["total_flops"] == pytest.approx(1e13 + 5e14)
    assert equal["hdt"]["full_steps_ran_same_total_flops"] == pytest.approx(10)
    # 80 s of distillation at full data's 1000 s / 10 steps: 0.8 steps more
    assert equal["hdt"]["full_steps_same_total_wall"] == pytest.approx(10.8)
    markdown = (tmp_path / "finetune_cost" / "report.md").read_text()
    assert "cost reduction, training wall time: 100.0x (target >= 80x, aim 100x): met" in markdown
    assert "overall speed-up incl. distillation: 11.1x" in markdown
    assert ("MSE increase of HDT over full data: +5.0% (target <= 2.5%, aim 2%): missed by 2.5 "
            "points; zero-shot's: +75.0%" in markdown)
    assert "HDT does not beat zero-shot" not in markdown and "HDT beats zero-shot" in markdown
    assert "HDT beats zero-shot: 0.4200 vs 0.7000\n" in markdown  # a clear gap: no caveat
    assert ("HDT beats Random subset: 0.4200 vs 0.4300 (within the seeds' spread, std 0.0424)"
            in markdown)
    assert "runs at a time (one thread each): 1, 2" in markdown
    assert f"Weights: `{standin} (sha256 0123456789)`" in markdown
    assert ("the stand-in's (weights 0123456789) zero-shot MSE 0.7000 against the published "
            "moirai-small's 0.375"
            in markdown and "clearly worse, so fine-tuning gains here overstate" in markdown)
    assert ("At equal total FLOPs (distillation included) the HDT set beats full data: "
            "0.4200 against 0.4500 (a budget of 15 full-data steps, 10 run on average: early "
            "stopping ended some seeds sooner; at equal total wall time a budget of 11;"
            in markdown)
    table = {line.split(" | ")[0]: line.split(" | ") for line in markdown.splitlines()
             if line.startswith("| ")}
    default = finetune_cost_arms.LABELS[finetune_cost_arms.DEFAULT_ARM]
    assert table[f"| {default}"][10] == "30" and table["| HDT set"][10] == "80"
    assert table["| Random subset"][10] == ""  # a subset: nothing distilled
    assert "Time to accuracy" not in markdown  # these records carry no test probes
    assert '"abc"' in markdown  # the commit the records were made with
    page = (tmp_path / "finetune_cost" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2  # self-contained: plots inlined


def test_a_record_of_another_rule_is_run_again_not_mixed_in(tmp_path):
    import finetune_cost

    rule = finetune_cost_arms.BENCHMARK_RULE.record()
    path, standin = tmp_path / "record.json", tmp_path / "standin-corpus3"
    standin.mkdir()
    job = {"record": str(path), "rule": rule, "weights": str(standin)}
    assert not finetune_cost.record_is_current(job)
    path.write_text(json.dumps({"rule": {**rule, "eval_schedule": "every"},
                                "weights": str(standin)}))
    assert not finetune_cost.record_is_current(job)
    from hdt_finetune.checksums import sha256_of_tree

    (standin / "model.safetensors").write_bytes(b"weights")
    made = {"rule": json.loads(json.dumps(rule)), "weights": str(standin),
            "weights_sha256": sha256_of_tree(standin)}
    path.write_text(json.dumps(made))
    assert finetune_cost.record_is_current(job)
    # Made with other weights (an older stand-in): run again, never mixed in.
    path.write_text(json.dumps({**made, "weights": str(tmp_path / "standin-corpus2")}))
    assert not finetune_cost.record_is_current(job)
    # The same folder pretrained again (another machine, other bits), or a record from
    # before weights were checksummed.
    path.write_text(json.dumps(made))
    (standin / "model.safetensors").write_bytes(b"other weights")
    from set_recipes import folder_sha256

    folder_sha256.cache_clear()  # within a run weights never change; here they do
    assert not finetune_cost.record_is_current(job)
    path.write_text(json.dumps({k: v for k, v in made.items() if k != "weights_sha256"}))
    assert not finetune_cost.record_is_current(job)
    path.write_text(json.dumps({"rule": rule, "weights": "random-init"}))
    assert finetune_cost.record_is_current({**job, "weights": "random"})


def test_a_matched_arm_chooses_its_learning_rate_among_runs_of_its_budget(tmp_path):
    import finetune_cost

    paths = BenchmarkPaths(results=tmp_path, work=tmp_path / "work")
    rule = finetune_cost_arms.BENCHMARK_RULE
    budget = {"steps": 15, "distill_flops": 5e14}
    for lr, val in ((1e-4, 0.6), (1e-3, 0.5)):
        path = finetune_cost.record_path(paths, "ETTh1", "moirai-small", "full_at_hdt_total",
                                         lr, 0)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"rule": rule.record(), "budget": budget,
                                    "best_val_mse": val, "weights": "hub/id"}))
    choose = finetune_cost.chosen_learning_rate
    assert choose(paths, rule, "ETTh1", "moirai-small", "full_at_hdt_total", "hub/id",
                  budget) == 1e-3
    # Another budget (the set arm was rerun since): the grid must run again.
    assert choose(paths, rule, "ETTh1", "moirai-small", "full_at_hdt_total", "hub/id",
                  {**budget, "steps": 16}) is None
    assert choose(paths, rule, "ETTh1", "moirai-small", "full_at_hdt_total", "other/id",
                  budget) is None


def test_the_report_keeps_one_rule_and_measures_time_to_accuracy(tmp_path):
    rule = {**finetune_cost_arms.BENCHMARK_RULE.__dict__,
            "learning_rates": list(finetune_cost_arms.BENCHMARK_RULE.learning_rates)}

    def probed(arm, seed, val_test, distill_flops=0.0, lr=1e-3):
        record = fake(arm, lr, seed, min(v for v, _ in val_test), 0.4, 100, 1e12)
        record["rule"] = rule
        record["cost"].update(optimizer_steps=40)  # 2.5e10 FLOPs a step
        record["distill_flops"] = distill_flops
        record["curve"] = [{"step": step, "val_mse": v, "test_mse_probe": t, "wall_s": step}
                           for step, (v, t) in zip((0, 10, 20, 40), val_test, strict=True)]
        return record

    full = [(1.0, 1.0), (0.6, 0.55), (0.5, 0.50), (0.45, 0.40)]  # selected: 0.40
    hdt = [(1.0, 1.0), (0.5, 0.43), (0.6, 0.30), (0.55, 0.35)]  # step 20 never selected
    worse = [(2.0, 1.0)] * 4  # the grid's other learning rate loses on validation
    rows = [probed("full", 0, full), probed("hdt", 0, hdt, distill_flops=1e11),
            probed("full", 0, worse, lr=1e-4), probed("hdt", 0, worse, lr=1e-4),
            {**fake("full", 1e-3, 0, 0.1, 0.1, 1, 1), "rule": {**rule, "patience": 9}}]
    rows[1]["train_data"] = rows[3]["train_data"] = {"distill_cost": {"wall_s": 7.0}}
    records = tmp_path / "finetune_cost" / "records"
    records.mkdir(parents=True)
    for i, row in enumerate(rows):
        (records / f"{i}.json").write_text(json.dumps(row))
    finetune_cost_report.report(BenchmarkPaths(results=tmp_path, work=tmp_path / "work"))
    head = json.loads((tmp_path / "finetune_cost_summary.json").read_text())["ETTh1"][
        "moirai-small"]
    assert head["mse"]["full"] == pytest.approx(0.4)  # the other rule's record left out
    reach = head["time_to_accuracy"]
    assert reach["10"]["target_mse"] == pytest.approx(0.44)
    assert reach["10"]["full"] == {"total_flops": 40 * 2.5e10, "total_wall_s": 40}
    assert reach["10"]["hdt"] == {"total_flops": 1e11 + 10 * 2.5e10, "total_wall_s": 17}
    assert reach["2.5"]["hdt"] == {"total_flops": None, "total_wall_s": None}  # 0.43 > 0.41
    assert not reach["25"]["met_by_starting_weights"]
    assert "standin_zeroshot_mse" not in head  # "/stand-in" is no stand-in folder's name
    markdown = (tmp_path / "finetune_cost" / "report.md").read_text()
    assert "| target | full data (1 seeds) | HDT set (1 seeds) |" in markdown
    # One plot of test MSE against total compute, distillation included.
    assert (tmp_path / "finetune_cost" / "compute_ETTh1_moirai-small.png").is_file()


def test_random_runs_two_seeds_where_the_others_run_three():
    assert finetune_cost_arms.arm_seeds("random", 3) == 2
    assert finetune_cost_arms.arm_seeds("hdt", 3) == 3
    assert finetune_cost_arms.arm_seeds("random", 1) == 1


def test_an_unknown_arm_is_named_before_anything_runs(tmp_path, capsys):
    import finetune_cost

    with pytest.raises(SystemExit, match=r"unknown arms \['ful'\]; known: "):
        finetune_cost.run(finetune_cost.RunArgs(arms=("zeroshot", "ful")))


def test_a_lower_mse_at_equal_compute_within_the_seeds_spread_is_not_called_a_win(tmp_path):
    records = tmp_path / "finetune_cost" / "records"
    records.mkdir(parents=True)
    budget = {"steps": 15, "distill_flops": 5e14, "set_steps": 10, "distill_wall_s": 80}
    rows = [fake("full", 1e-3, s, 0.30, 0.40, 1000, 1e15) for s in (0, 1)]
    # HDT's mean is 0.005 below full data's at its total FLOPs, its seeds 0.03 apart.
    rows += [fake("hdt", 1e-3, s, 0.40, m, 10, 1e13, distill_s=80)
             for s, m in ((0, 0.42), (1, 0.45))]
    rows += [{**fake(arm, 1e-3, s, 0.5, 0.44, 10, 1e15), "budget": budget, "steps": 15}
             for arm in ("full_at_hdt_train", "full_at_hdt_total") for s in (0, 1)]
    # The other rate of the grid, worse on validation, so that each arm chooses 1e-3.
    rows += [{**r, **fake(r["arm"], 1e-4, 0, 0.9, 0.9, 10, 1e15)}
             for r in rows if r["seed"] == 0]
    for i, row in enumerate(rows):
        (records / f"{i}.json").write_text(json.dumps(row))
    finetune_cost_report.report(BenchmarkPaths(results=tmp_path, work=tmp_path / "work"))
    markdown = (tmp_path / "finetune_cost" / "report.md").read_text()
    assert ("the HDT set beats full data: 0.4350 against 0.4400 (15 full-data steps; at equal "
            "total wall time a budget of 11; at equal fine-tuning steps full data reaches 0.4400). "
            "Within the seeds' spread (margin 0.0050, std 0.0212): not a win." in markdown)


def test_random_without_a_matched_run_is_read_against_full_datas_curve_at_its_total_flops(
        tmp_path):
    rule = {**finetune_cost_arms.BENCHMARK_RULE.__dict__,
            "learning_rates": list(finetune_cost_arms.BENCHMARK_RULE.learning_rates)}

    def probed(arm, lr, seed, val_test, steps):
        record = fake(arm, lr, seed, min(v for v, _ in val_test), 0.4, 100, steps * 1e10)
        record.update(rule=rule, distill_flops=0.0)
        record["cost"].update(optimizer_steps=steps)  # 1e10 FLOPs a step
        record["curve"] = [{"step": step, "val_mse": v, "test_mse_probe": t, "wall_s": step}
                           for step, (v, t) in zip((0, 10, 20, 40), val_test, strict=True)]
        return record

    def report(random_seeds):
        records = tmp_path / "finetune_cost" / "records"
        shutil.rmtree(records, ignore_errors=True)
        records.mkdir(parents=True)
        rows = [probed("full", 1e-3, s, full, 40) for s in (0, 1)]
        rows += [probed("random", 1e-3, s, curve, 25) for s, curve in enumerate(random_seeds)]
        rows += [probed(arm, 1e-4, 0, [(2.0, 1.0)] * 4, 40) for arm in ("full", "random")]
        for i, row in enumerate(rows):
            (records / f"{i}.json").write_text(json.dumps(row))
        finetune_cost_report.report(BenchmarkPaths(results=tmp_path, work=tmp_path / "w"))
        head = json.loads((tmp_path / "finetune_cost_summary.json").read_text())["ETTh1"][
            "moirai-small"]
        return head, (tmp_path / "finetune_cost" / "report.md").read_text()

    # Random ran 25 steps: full data's last point within them is step 20, whose selected
    # model is step 10's (validation 0.6 < 0.7), probed at 0.55.
    full = [(1.0, 1.0), (0.6, 0.55), (0.7, 0.30), (0.45, 0.40)]
    worse = [(1.0, 1.0), (0.8, 0.60), (0.9, 0.50), (0.9, 0.50)]
    head, markdown = report([worse, worse])
    assert head["equal_compute_probed"] == {"random": {
        "mse_probed": 0.6, "full_mse_probed_same_total_flops": 0.55,
        "full_steps_same_total_flops": 20, "total_flops": 25 * 1e10, "spread": 0.0}}
    assert ("The Random subset has no full-data run matched to its budget. On the probed test "
            "subset it does not beat the model full data had selected by the same total FLOPs: "
            "0.6000 against 0.5500 (std 0.0000; step 20" in markdown)
    # Lower on average (0.53), but its seeds are 0.0424 apart: not a win.
    spread = [(1.0, 1.0), (0.8, 0.50), (0.9, 0.50), (0.9, 0.50)]
    head, markdown = report([spread, [(1.0, 1.0), (0.8, 0.56), (0.9, 0.5), (0.9, 0.5)]])
    assert head["equal_compute_probed"]["random"]["mse_probed"] == pytest.approx(0.53)
    assert "it is lower than, within the seeds' spread (not a win), the model" in markdown
    head, markdown = report([spread, spread])
    assert "subset it beats the model full data had selected" in markdown


def test_a_standin_pretrained_again_keeps_the_old_ones_record(tmp_path, monkeypatch, capsys):
    """A new machine pretrains the stand-in again with other bits: its record is kept beside
    the old one's, which the records made with the old stand-in still name."""
    import finetune_cost
    from set_recipes import folder_sha256

    from hdt_finetune.finetune import standin_model

    folder = tmp_path / "cache" / "moirai-small-without-ETT_transformer_1-corpus3"
    folder.mkdir(parents=True)

    def pretrain(weights: bytes, mse: float) -> str:
        (folder / "model.safetensors").write_bytes(weights)
        (folder / standin_model.STANDIN_FILE).write_text(json.dumps(
            {"model_files_sha256": weights.hex(), "validation": {"mse": mse}}))
        folder_sha256.cache_clear()  # within a run weights never change; here they do
        return folder_sha256(str(folder))

    monkeypatch.setattr(standin_model, "build_standin", lambda dataset, base: folder)
    paths = BenchmarkPaths(results=tmp_path / "results", work=tmp_path / "work")
    kept = paths.results / "finetune_cost" / "standins"
    first = pretrain(b"machine A", 0.74)
    assert finetune_cost.resolve_weights("ETTh1", "small", "standin", paths) == str(folder)
    assert [p.name for p in kept.iterdir()] == [f"{folder.name}__{first[:10]}.json"]
    second = pretrain(b"machine B", 0.75)
    finetune_cost.resolve_weights("ETTm1", "small", "standin", paths)
    records = {p.name: json.loads(p.read_text()) for p in kept.iterdir()}
    assert records == {
        f"{folder.name}__{first[:10]}.json": {"model_files_sha256": b"machine A".hex(),
                                               "validation": {"mse": 0.74}},
        f"{folder.name}__{second[:10]}.json": {"model_files_sha256": b"machine B".hex(),
                                                "validation": {"mse": 0.75}}}
    assert "was pretrained again" in capsys.readouterr().out


def test_the_report_names_each_datasets_machine_and_stand_in():
    """A run resumed on a new machine: each machine with its datasets, each stand-in by its
    checksum where the record has one."""
    old = {**fake("full", 1e-4, 0, 0.3, 0.4, 10, 1e12), "machine": {"platform": "v1252"}}
    new = {**fake("full", 1e-4, 0, 0.3, 0.4, 10, 1e12), "dataset": "ETTm1",
           "machine": {"platform": "v1272"}}
    context = finetune_cost_report._context([old, new, {**new, "dataset": "ETTm2"}])
    assert context["machines"] == [{"platform": "v1252", "datasets": ["ETTh1"]},
                                   {"platform": "v1272", "datasets": ["ETTm1", "ETTm2"]}]
    line = finetune_cost_report._standin_line(0.5, {**old, "weights_sha256": None})
    assert line.startswith("the stand-in's zero-shot MSE 0.5000")
    line = finetune_cost_report._standin_line(0.5, {**old, "dataset": "exchange_rate"})
    assert line.startswith("the stand-in's (weights 0123456789) zero-shot MSE is 0.5000")
