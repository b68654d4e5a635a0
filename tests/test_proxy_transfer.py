"""The proxy-transfer benchmark: a proxy arm's set is distilled with the proxy's weights,
and the report scores each arm on the larger model beside the small screen's score."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import proxy_transfer  # noqa: E402
from benchmark_jobs import BenchmarkPaths  # noqa: E402
from fm_screening import SCREEN_RULE  # noqa: E402

FULL_CURVE = [{"step": 0, "val_mse": 1.0}, {"step": 10, "val_mse": 0.8},
              {"step": 100, "val_mse": 0.5}, {"step": 1000, "val_mse": 0.4}]


def record(arm, lr, val, steps, distill_flops=0.0, curve=None, weights="/base", trained=None):
    return {"dataset": "ETTh1", "arm": arm, "learning_rate": lr, "best_val_mse": val,
            "rule": SCREEN_RULE.record(), "weights": weights, "weights_sha256": weights,
            "fine_tuned": "proxy" if weights == "/small" else "model",
            "steps": steps, "cost": {"flops": steps * 1e9, "optimizer_steps": steps},
            "distill_flops": distill_flops, "curve": curve or [], "concurrent_runs": 2,
            "git": {"sha": "abcdef0"},
            "train_data": {"kind": "full", "points": 8640} if arm == "full" else
            {"kind": "synthetic", "points": 384, "content_sha256": trained or f"set-{arm}"}}


def test_a_proxy_arm_distils_with_the_proxy_and_a_direct_arm_with_the_model(
        tmp_path, monkeypatch):
    paths = BenchmarkPaths(results=tmp_path / "r", work=tmp_path / "w")
    # Which weights each arm's set checksums are read from.
    monkeypatch.setattr(proxy_transfer, "sets_sha256",
                        lambda paths, dataset, candidate, weights: [f"sha-of-{weights}"])
    import finetune_cost  # the default set is one of its arms: no set made here to read

    monkeypatch.setattr(finetune_cost, "current_sets", lambda *args: None)
    from set_recipes import BY_NAME

    member = BY_NAME["hdt_fm_lite"].members[0]
    for name, made_with in (("hdt_fm_lite_proxy", "/small"), ("hdt_fm_lite_direct", "/base")):
        job = proxy_transfer.transfer_job(paths, "ETTh1", "base", "/base", "/small",
                                          proxy_transfer.BY_ARM[name], 1e-3, 2, False)
        assert job["config"]["model.source"] == "/base"  # both fine-tune the larger model
        assert job["config"]["train_data"] == str(member.folder(paths, "ETTh1", made_with))
        assert job["sets_sha256"] == [f"sha-of-{made_with}"]
        assert job["record_extra"]["set_weights"] == made_with
    assert member.folder(paths, "ETTh1", "/small") != member.folder(paths, "ETTh1", "/base")
    # The default set needs no model: its record names none.
    job = proxy_transfer.transfer_job(paths, "ETTh1", "base", "/base", "/small",
                                      proxy_transfer.ARMS[1], 1e-3, 2, False)
    assert job["record_extra"]["set_weights"] is None
    # One distillation per set, each with its arm's weights.
    sources = sorted(s for job in proxy_transfer.distillations(paths, "ETTh1", "/base",
                                                               "/small", smoke=False)
                     for s in job["settings"] if s.startswith("fm.source="))
    assert sources == ["fm.source=/base", "fm.source=/small", "fm.source=/small"]
    # The proxy fine-tuned on the set it made, recorded apart from the larger model's runs.
    proxy = next(a for a in proxy_transfer.PROXY_ARMS if a.name == "hdt_fm_lite")
    job = proxy_transfer.transfer_job(paths, "ETTh1", "tiny", "/small", "/small", proxy,
                                      1e-3, 2, False, fine_tuned="proxy")
    assert job["config"]["model.source"] == "/small" and job["config"]["model.size"] == "tiny"
    assert job["config"]["train_data"] == str(member.folder(paths, "ETTh1", "/small"))
    assert job["record_extra"]["fine_tuned"] == "proxy"
    base_full = proxy_transfer.transfer_job(paths, "ETTh1", "tiny", "/small", "/small",
                                            proxy_transfer.ARMS[0], 1e-3, 2, False)
    proxy_full = proxy_transfer.transfer_job(paths, "ETTh1", "tiny", "/small", "/small",
                                             proxy_transfer.PROXY_ARMS[0], 1e-3, 2, False,
                                             fine_tuned="proxy")
    assert base_full["record"] != proxy_full["record"]  # size == proxy: the smoke run


def test_an_arm_whose_learning_rates_ran_on_different_sets_is_not_scored():
    same = [record("hdt_fm_proxy", lr, 0.5, 20) for lr in (1e-4, 1e-3)]
    other = {**same[1], "train_data": {**same[1]["train_data"], "content_sha256": "again"}}
    kept, mixed = proxy_transfer.one_set_per_arm([same[0], other, record("full", 1e-4, 1, 9)])
    assert mixed == [("ETTh1", "hdt_fm_proxy")] and [r["arm"] for r in kept] == ["full"]
    assert proxy_transfer.one_set_per_arm(same) == (same, [])


def test_the_report_sets_the_proxy_beside_the_direct_set_and_the_small_screen(tmp_path):
    paths = BenchmarkPaths(results=tmp_path, work=tmp_path / "work")
    records = tmp_path / "proxy_transfer" / "records"
    records.mkdir(parents=True)
    rows = [record("full", lr, 0.4, 1000, curve=FULL_CURVE) for lr in (1e-4, 1e-3)]
    # 20 steps + 80 steps' worth of distillation against full data's 0.5 by step 100.
    rows += [record("hdt_fm_lite_proxy", lr, v, 20, distill_flops=80e9, trained="by-small")
             for lr, v in ((1e-4, 0.45), (1e-3, 0.6))]
    # Distilled with the larger model: 980 steps' worth, against full data's 0.4.
    rows += [record("hdt_fm_lite_direct", lr, v, 20, distill_flops=980e9)
             for lr, v in ((1e-4, 0.42), (1e-3, 0.7))]
    # The proxy on the same set, scored against its own full data (0.5 by step 100), not
    # the larger model's.
    rows += [record("full", lr, 0.45, 1000, curve=FULL_CURVE, weights="/small")
             for lr in (1e-4, 1e-3)]
    rows += [record("hdt_fm_lite", lr, v, 20, distill_flops=80e9, weights="/small",
                    trained="by-small") for lr, v in ((1e-4, 0.55), (1e-3, 0.6))]
    # hdt_fm on the proxy trained on a set made again since the larger model's run: no score.
    rows += [record("hdt_fm_proxy", lr, 0.5, 20, distill_flops=80e9, trained="fm-first")
             for lr in (1e-4, 1e-3)]
    rows += [record("hdt_fm", lr, 0.5, 20, distill_flops=80e9, weights="/small",
                    trained="fm-again") for lr in (1e-4, 1e-3)]
    for i, row in enumerate(rows):
        (records / f"{i}.json").write_text(json.dumps(row))
    (tmp_path / "fm_screening_summary.json").write_text(json.dumps(
        {"scores": {"ETTh1": {"hdt_fm_lite": {"score": 1.057}}}}))
    proxy_transfer.report(paths)
    summary = json.loads((tmp_path / "proxy_transfer_summary.json").read_text())
    proxy = summary["rows"]["ETTh1"]["hdt_fm_lite_proxy"]
    assert proxy["score"] == pytest.approx(0.9) and proxy["made_with"] == "proxy"
    assert proxy["small_screen_score"] == 1.057
    assert proxy["proxy_score"] == pytest.approx(1.1)
    # The proxy never trained on the set the larger model made, nor on hdt_fm's first set.
    assert summary["rows"]["ETTh1"]["hdt_fm_lite_direct"]["proxy_score"] is None
    assert summary["rows"]["ETTh1"]["hdt_fm_proxy"]["proxy_score"] is None
    assert summary["weights"] == ["/base"] and summary["proxy_weights"] == ["/small"]
    assert summary["rows"]["ETTh1"]["hdt_fm_lite_direct"]["score"] == pytest.approx(1.05)
    assert summary["start_val_mse"] == {"ETTh1": 1.0}
    markdown = (tmp_path / "proxy_transfer" / "report.md").read_text()
    assert ("The set distilled with the proxy is as good as or better than the one distilled "
            "with the fine-tuned model: score 0.900 against 1.050, at 8.00e+10 distillation "
            "FLOPs against 9.80e+11 (one seed" in markdown)
    assert summary["rows"]["ETTh1"]["full"]["best_step"] == 1000


def _row(score, val, distill_flops, proxy_score=None, taught=None, on_proxy=None):
    return {"score": score, "val_mse": val, "distill_flops": distill_flops,
            "proxy_score": proxy_score, "val_over_full_best": taught,
            "proxy_val_over_full_best": on_proxy}


def test_sets_that_keep_the_starting_weights_are_not_ranked_by_their_scores():
    # Both sets' best is the starting weights (1.0): the proxy's lower score is only its
    # cheaper distillation, within which full data got less far.
    rows = {"hdt_fm_lite_proxy": _row(1.01, 1.0, 2e12),
            "hdt_fm_lite_direct": _row(1.06, 1.0, 1e13)}
    [line] = proxy_transfer.proxy_lines(rows, start=1.0)
    assert line.startswith("- Neither set improves on the starting weights")
    assert "score 1.010 against 1.060" in line
    # One that improves is compared as before.
    rows["hdt_fm_lite_proxy"]["val_mse"] = 0.9
    [line] = proxy_transfer.proxy_lines(rows, start=1.0)
    assert line.startswith("- The set distilled with the proxy is as good as or better than")


def test_the_default_set_is_set_beside_itself_on_the_proxy():
    rows = {proxy_transfer.DEFAULT_ARM: _row(0.988, 0.73, 8e11, proxy_score=1.003,
                                             taught=1.040, on_proxy=1.016)}
    [line] = proxy_transfer.proxy_lines(rows, start=0.79)
    assert "scores 0.988 on the larger model and 1.003 on the proxy" in line
    assert "1.040 times full data's best on the larger model and 1.016 times" in line
    assert "it teaches the larger model less" in line
    rows[proxy_transfer.DEFAULT_ARM]["val_over_full_best"] = 1.0
    assert "as much or more" in proxy_transfer.proxy_lines(rows, start=0.79)[0]
    rows[proxy_transfer.DEFAULT_ARM]["proxy_score"] = None  # never trained on the proxy
    assert proxy_transfer.proxy_lines(rows, start=0.79) == []
