"""The real command line on tiny data."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

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


def test_overwrite_replaces_only_our_sets_and_json_is_not_replaced_silently(tmp_path, sine_csv,
                                                                            capsys):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "data.csv").write_text(sine_csv.read_text())
    args = ["distill", "--dataset", str(sine_csv), "--method", "random", "--length", "120",
            "context_length=24"]
    assert main([*args, "--out", str(inputs), "--overwrite"]) == 2
    assert "not a set written by hdt" in capsys.readouterr().err
    assert (inputs / "data.csv").read_text() == sine_csv.read_text()  # untouched
    out = tmp_path / "set"
    assert main([*args, "--out", str(out)]) == 0
    assert main([*args, "--out", str(out), "--seed", "4", "--overwrite"]) == 0
    assert json.loads((out / "manifest.json").read_text())["seed"] == 4

    report = tmp_path / "eval.json"
    report.write_text("{}")
    evaluate = ["evaluate", "--synthetic", str(out), "context_length=24", "horizon=12",
                "max_steps=5", "--seeds", "1", "--json", str(report)]
    assert main(evaluate) == 2
    assert "already exists" in capsys.readouterr().err and report.read_text() == "{}"
    assert main([*evaluate, "--overwrite"]) == 0 and "results" in json.loads(report.read_text())
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []  # no .old, no temporary files beside what was replaced


def test_a_set_shorter_than_one_window_is_refused_when_it_is_made(tmp_path, sine_csv, capsys):
    assert main(["distill", "--dataset", str(sine_csv), "--method", "random", "--length", "100",
                 "context_length=24", "--out", str(tmp_path / "short")]) == 2
    assert "length 100 is shorter than one training window (context_length 24 + horizon 96" \
        in capsys.readouterr().err
    assert not (tmp_path / "short").exists()


def test_an_unwritable_output_fails_before_the_work(tmp_path, sine_csv, capsys, monkeypatch):
    from pathlib import Path

    unwritable = Path("/sys/hdt_test_output")  # sysfs: refused even to root
    if not Path("/sys").is_dir():
        pytest.skip("no /sys here")
    monkeypatch.setenv("HDT_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["distill", "--dataset", str(sine_csv), "--method", "mtt", "--length", "120",
                 "context_length=24", "--out", str(unwritable / "set")]) == 2
    assert "cannot write /sys/hdt_test_output/set" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()  # no expert was trained first
    assert main(["evaluate", "--full", "--dataset", str(sine_csv), "--json",
                 str(unwritable / "r.json")]) == 2
    assert "cannot write" in capsys.readouterr().err
