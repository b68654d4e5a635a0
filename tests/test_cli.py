"""The real command line on tiny data."""

from __future__ import annotations

import json
import subprocess
import sys

from hdt_finetune.cli import main


def test_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "hdt_finetune.cli", "--help"],
                         capture_output=True, text=True, check=True).stdout
    for command in ("distill", "evaluate", "distill-corpus", "finetune", "datasets"):
        assert command in out


def test_distill_then_evaluate_a_file(tmp_path, sine_csv, capsys):
    out = tmp_path / "random_set"
    assert main(["distill", "--dataset", str(sine_csv), "--method", "random", "--length", "120",
                 "--seed", "1", "context_length=24", "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["method"] == "random" and manifest["seed"] == 1
    assert manifest["source"]["sha256"] and manifest["length"] == 120
    assert manifest["settings"]["context_length"] == 24
    for key in ("scaling", "provenance", "cost", "files", "content_sha256"):
        assert key in manifest
    assert manifest["cost"]["wall_s"] > 0 and manifest["cost"]["peak_rss_mb"] > 0

    report = tmp_path / "eval.json"
    assert main(["evaluate", "--synthetic", str(out), "--dataset", str(sine_csv),
                 "context_length=24", "horizon=12", "--backbone", "dlinear,xpatch",
                 "--seeds", "2", "--set", "max_steps=40", "--json", str(report)]) == 0
    results = json.loads(report.read_text())["results"]
    assert [r["backbone"] for r in results] == ["dlinear", "xpatch"]
    for row in results:
        for key in ("mse_mean", "mse_std", "mae_mean", "mae_std", "wall_s"):
            assert isinstance(row[key], float)
    assert "dlinear  mse" in capsys.readouterr().out


def test_evaluate_full_on_a_named_dataset(tmp_path, shared_data_dir):
    report = tmp_path / "full.json"
    assert main(["evaluate", "--full", "--dataset", "ETTh1", "--backbone", "dlinear",
                 "--seeds", "1", "max_steps=20", "--json", str(report)]) == 0
    payload = json.loads(report.read_text())
    assert payload["training_data"]["kind"] == "full"
    assert payload["dataset"]["name"] == "ETTh1"


def test_synthetic_set_from_another_dataset_is_refused(tmp_path, sine_csv, shared_data_dir,
                                                       capsys):
    out = tmp_path / "set"
    main(["distill", "--dataset", str(sine_csv), "--method", "random", "--length", "100",
          "context_length=24", "horizon=24", "--out", str(out)])
    code = main(["evaluate", "--synthetic", str(out), "--dataset", "ETTh1", "--seeds", "1"])
    assert code == 2
    assert "was made from sines" in capsys.readouterr().err


def test_bad_input_exits_2_with_a_message_not_a_traceback(tmp_path, capsys):
    assert main(["distill", "--dataset", "no_such_data", "--method", "random",
                 "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "hdt: error:" in err and "neither a known dataset" in err
    assert "Traceback" not in err
    assert main(["evaluate", "--full", "--dataset", "ETTh1", "--backbone", "lstm"]) == 2
    assert "unknown backbone(s) ['lstm']" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
