"""Every benchmark program runs end to end at its smoke size (`run smoke=true`), writes its
records and report under runs/smoke/ and never beside the committed results. The programs
are copied into a temporary folder so that their runs/ is the test's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.parametrize(("program", "report"), [
    ("reference_methods.py", "reference/table.md"),
    ("distill_quality.py", "distill_quality/report.md"),
    ("finetune_cost.py", "finetune_cost/report.md"),
    ("corpus_scaling.py", "corpus_scaling/report.md"),
    ("finetune_throughput.py", "finetune_throughput.json"),
    ("distill_speed.py", "distill_speed/report.md"),
    ("baseline_tuning.py", "baseline_tuning/report.md"),
    ("fm_screening.py", "fm_screening/report.md"),
    ("proxy_transfer.py", "proxy_transfer/report.md"),
])
def test_a_benchmark_runs_at_its_smoke_size(tmp_path, shared_data_dir, program, report):
    if program in ("finetune_cost.py", "fm_screening.py", "proxy_transfer.py"):
        pytest.importorskip("uni2ts")
    copy = tmp_path / "benchmarks"
    copy.mkdir()
    for path in BENCHMARKS.glob("*.py"):
        shutil.copy(path, copy)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HDT_CACHE_DIR": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, str(copy / program), "run", "smoke=true"],
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-6000:]
    assert "FAILED" not in result.stdout
    smoke = tmp_path / "runs" / "smoke" / "results"
    assert (smoke / report).is_file()
    assert not (copy / "results").exists()  # nothing beside the committed records
    if report.endswith(".md"):
        records = list((smoke / Path(report).parent / "records").glob("*.json"))
        assert records and all(json.loads(p.read_text()).get("git") for p in records)


def test_an_older_or_damaged_set_is_distilled_again_not_reused(tmp_path):
    sys.path.insert(0, str(BENCHMARKS))
    from benchmark_jobs import set_is_current

    from hdt_finetune.synthetic import per_series_scaling, write_synthetic_set
    from tests.conftest import sine_frame

    values = sine_frame(rows=50).drop(columns="date").to_numpy()
    folder = write_synthetic_set(tmp_path / "set", values, ["a", "b", "c"], "h",
                                 sine_frame().date[0], {
                                     "method": "random", "settings": {}, "seed": 0,
                                     "source": {"kind": "corpus"},
                                     "scaling": per_series_scaling(values), "cost": {},
                                     "method_info": {}})
    assert set_is_current(folder) and not set_is_current(tmp_path / "absent")
    (folder / "manifest.json").write_text(json.dumps({"format_version": 1}))
    assert not set_is_current(folder)


def test_the_tuning_search_scores_relative_to_the_defaults_and_waits_for_every_cell():
    sys.path.insert(0, str(BENCHMARKS))
    from baseline_tuning import CONFIGURATIONS, scores

    def record(configuration, dataset, backbone, val):
        return {"method": "mtt", "configuration": configuration, "dataset": dataset,
                "backbone": backbone, "mse_mean": 9.0,
                "seeds": [{"best_val_mse": val - 0.1}, {"best_val_mse": val + 0.1}]}

    records = [record("defaults", "ETTh1", "dlinear", 1.0), record("defaults", "ETTm1",
                                                                   "dlinear", 0.5),
               record("a", "ETTh1", "dlinear", 0.9), record("a", "ETTm1", "dlinear", 0.6),
               record("b", "ETTh1", "dlinear", 0.5)]
    table = scores(records, cells_needed=2)["mtt"]
    assert table["defaults"]["score"] == pytest.approx(1.0)
    # Relative per cell: a small-scale dataset counts as much as a large one.
    assert table["a"]["score"] == pytest.approx((0.9 / 1.0 + 0.6 / 0.5) / 2)
    assert table["b"]["score"] is None  # ETTm1 not run yet: no score, so never chosen
    # The defaults missing a cell (a failed job) score nothing: no choice on part of the grid.
    assert scores(records[1:], cells_needed=2)["mtt"]["a"]["score"] is None
    # Every baseline gets the same number of configurations: 15, HDT's 30 validation runs
    # over two tuning datasets.
    assert {len(named) for named in CONFIGURATIONS.values()} == {15}
    assert all(next(iter(named)) == "defaults" for named in CONFIGURATIONS.values())


def test_a_tuning_record_of_an_edited_configuration_is_refused():
    sys.path.insert(0, str(BENCHMARKS))
    from dataclasses import asdict

    from baseline_tuning import CONFIGURATIONS, check_settings

    from hdt_finetune.distill.settings import DistillSettings

    made = {"dataset": "ETTh1", "method": "mtt", "configuration": "data_lr_0.03",
            "backbone": "dlinear",
            "distill_settings": {"length": 384, **asdict(DistillSettings(data_lr=0.03))}}
    check_settings([made], CONFIGURATIONS)
    edited = {**made, "distill_settings": {**made["distill_settings"], "data_lr": 0.02}}
    with pytest.raises(SystemExit, match="ETTh1 mtt data_lr_0.03 dlinear was not made with"):
        check_settings([edited], CONFIGURATIONS)
    with pytest.raises(SystemExit, match="not made with"):
        check_settings([{**made, "configuration": "gone"}], CONFIGURATIONS)
