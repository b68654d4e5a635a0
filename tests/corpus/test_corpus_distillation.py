"""Distilling a corpus: planted spectra recovered, resume without re-reading, two processes
against one, and the command line."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from hdt_finetune.cli import main
from hdt_finetune.corpus import CorpusDistillConfig, distill_corpus
from hdt_finetune.corpus import corpus_distillation as module
from hdt_finetune.distill.expert_buffer import ExpertSettings
from hdt_finetune.distill.matching_engine import MatchingState
from hdt_finetune.distill.settings import DistillSettings
from hdt_finetune.process_group import ProcessGroup
from hdt_finetune.run_identity import CheckpointError
from hdt_finetune.synthetic import read_synthetic_set

PERIODS = (24, 8)  # planted in every series, at levels and scales that differ per series
TINY = DistillSettings(context_length=24, horizon=12, iterations=40, top_k=4, student_steps=5,
                       student_batch=64, checkpoint_every=10,
                       experts=ExpertSettings(n_experts=2, snapshots=8, snapshot_steps=10,
                                              batch_size=32))
LENGTH = 96


def planted_corpus(folder, files=4, series=3, rows=1500, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(rows)
    for f in range(files):
        frame = pd.DataFrame({
            f"s{c}": rng.normal(0, 20) + rng.lognormal(0, 1) * (
                2 * np.sin(2 * np.pi * t / PERIODS[0] + rng.uniform(0, 6))
                + np.sin(2 * np.pi * t / PERIODS[1] + rng.uniform(0, 6))
                + 0.3 * rng.standard_normal(rows))
            for c in range(series)})
        frame.to_parquet(folder / f"part{f}.parquet", row_group_size=400, index=False)
    return folder


def config(tmp_path, corpus, name="set", **changes):
    base = CorpusDistillConfig(corpus=str(corpus), out=tmp_path / name, method="hdt",
                               length=LENGTH, channels=4, chunk_rows=500,
                               window_reservoir=4096, pool_size=256, settings=TINY,
                               show_progress=False)
    return dataclasses.replace(base, **changes)


def dominant_bins(values: np.ndarray, n: int = 2) -> set[int]:
    power = np.abs(np.fft.rfft(values - values.mean(0), axis=0)).mean(axis=1)
    return {int(b) for b in np.argsort(power)[-n:]}


def test_hdt_on_a_corpus_keeps_the_planted_spectrum(tmp_path):
    corpus = planted_corpus(tmp_path / "corpus")
    out = distill_corpus(config(tmp_path, corpus), ProcessGroup())
    synthetic = read_synthetic_set(out)
    assert synthetic.values.shape == (LENGTH, 4)
    assert dominant_bins(synthetic.values) == {LENGTH // p for p in PERIODS}
    manifest = synthetic.manifest
    assert manifest["source"]["counts"]["series"] == 12 and manifest["cost"]["processes"] == 1
    assert manifest["settings"]["window_norm"] is True
    curve = manifest["method_info"]["loss_curve"]
    first, last = (np.mean([row["grad"] for row in part]) for part in (curve[:10], curve[-10:]))
    assert last < first  # the matching loss falls
    assert not (tmp_path / ".set.checkpoint").exists()


def test_a_killed_run_resumes_without_reading_the_corpus_again(tmp_path, monkeypatch):
    corpus = planted_corpus(tmp_path / "corpus", files=2)
    whole = read_synthetic_set(distill_corpus(config(tmp_path, corpus, "whole"),
                                              ProcessGroup())).values
    calls = {"n": 0}
    original = MatchingState.step

    def dying_step(self, *args):
        calls["n"] += 1
        if calls["n"] == 25:
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(MatchingState, "step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        distill_corpus(config(tmp_path, corpus, "again"), ProcessGroup())
    monkeypatch.setattr(MatchingState, "step", original)
    assert (tmp_path / ".again.checkpoint").exists()
    monkeypatch.setattr(module, "open_corpus", lambda *a, **k: pytest.fail("read again"))
    again = read_synthetic_set(distill_corpus(config(tmp_path, corpus, "again"),
                                              ProcessGroup())).values
    np.testing.assert_array_equal(again, whole)


def test_two_processes_against_one(tmp_path):
    corpus = planted_corpus(tmp_path / "corpus")
    args = ["distill-corpus", "--corpus", str(corpus), "--length", str(LENGTH), "--channels",
            "4", "--chunk-rows", "500", "--window-reservoir", "4096", "--pool-size", "256",
            "context_length=24", "--quiet", "--set", "horizon=12",
            "--set", "iterations=40", "--set", "top_k=4", "--set", "student_steps=5",
            "--set", "student_batch=64", "--set", "experts.n_experts=2",
            "--set", "experts.snapshots=8", "--set", "experts.snapshot_steps=10",
            "--set", "experts.batch_size=32"]
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                    "--nproc_per_node=2", "-m", "hdt_finetune.cli", *args, "--out",
                    str(tmp_path / "two")], env=env, check=True, capture_output=True,
                   timeout=600)
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    one, two = (read_synthetic_set(tmp_path / n) for n in ("one", "two"))
    per_process = two.manifest["cost"]["per_process"]
    assert [p["rank"] for p in per_process] == [0, 1]
    # The matchings are split: each process runs half of the 40 iterations.
    assert [p["iterations"] for p in per_process] == [20, 20]
    assert one.manifest["cost"]["per_process"][0]["iterations"] == 40
    # Each process read its own share; together, exactly the corpus (and its statistics).
    assert sum(p["points"] for p in per_process) == one.manifest["source"]["counts"]["points"]
    assert all(p["points"] > 0 for p in per_process)
    assert two.manifest["source"]["counts"] == one.manifest["source"]["counts"]
    moments = (one.manifest["source"]["moments"], two.manifest["source"]["moments"])
    assert moments[1]["mean"] == pytest.approx(moments[0]["mean"])
    assert moments[1]["std"] == pytest.approx(moments[0]["std"])
    # Different draws, the same result where it matters: the planted spectrum.
    for result in (one, two):
        assert dominant_bins(result.values) == {LENGTH // p for p in PERIODS}


def test_the_command_line_refuses_what_a_corpus_cannot_do(tmp_path, capsys):
    corpus = planted_corpus(tmp_path / "corpus", files=1)
    assert main(["distill-corpus", "--corpus", str(corpus), "--method", "random",
                 "--length", "96", "context_length=24", "--set", "horizon=12",
                 "--out", str(tmp_path / "r"), "--quiet"]) == 0
    assert read_synthetic_set(tmp_path / "r").values.shape == (96, 8)
    with pytest.raises(SystemExit):  # argparse: condtsf is not a corpus method
        main(["distill-corpus", "--corpus", str(corpus), "--method", "condtsf",
              "--out", str(tmp_path / "c")])
    assert main(["distill-corpus", "--corpus", str(tmp_path / "nothing"),
                 "--out", str(tmp_path / "n")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert main(["distill-corpus", "--corpus", str(corpus), "--length", "100",
                 "--out", str(tmp_path / "n")]) == 2
    assert "shorter than one window" in capsys.readouterr().err


def test_the_stream_must_give_every_process_a_window(tmp_path):
    corpus = planted_corpus(tmp_path / "corpus", files=1, series=1, rows=20)
    with pytest.raises(ValueError, match="holds no window"):
        distill_corpus(config(tmp_path, corpus), ProcessGroup())


def test_a_checkpoint_of_another_run_is_refused(tmp_path, monkeypatch):
    corpus = planted_corpus(tmp_path / "corpus", files=1)

    def killed(self, *args):
        raise KeyboardInterrupt  # after the pass and the experts, before any matching

    monkeypatch.setattr(MatchingState, "step", killed)
    with pytest.raises(KeyboardInterrupt):
        distill_corpus(config(tmp_path, corpus, "set"), ProcessGroup())
    assert (tmp_path / ".set.checkpoint" / "rank0-of-1" / "real_side").is_dir()
    with pytest.raises(CheckpointError, match="belongs to another run"):
        distill_corpus(config(tmp_path, corpus, "set", seed=1), ProcessGroup())


def test_one_outlier_does_not_set_the_corpus_statistics(tmp_path, caplog):
    corpus = planted_corpus(tmp_path / "corpus", files=2)
    frame = pd.read_parquet(corpus / "part1.parquet")
    clean = distill_corpus(config(tmp_path, corpus, "clean", method="random"), ProcessGroup())
    frame.loc[700, "s1"] = 1e35  # a sentinel in one series
    frame.to_parquet(corpus / "part1.parquet", row_group_size=400, index=False)
    with caplog.at_level("WARNING"):
        dirty = distill_corpus(config(tmp_path, corpus, "dirty", method="random"),
                               ProcessGroup())
    assert "part1.parquet:s1: 1 point(s) more than 1e+06 median absolute deviations" \
        in caplog.text
    source = read_synthetic_set(dirty).manifest["source"]
    assert source["counts"]["outliers"] == 1
    reference = read_synthetic_set(clean).manifest["source"]["moments"]
    assert source["moments"]["std"] == pytest.approx(reference["std"], rel=0.01)
    assert source["sha256"] != read_synthetic_set(clean).manifest["source"]["sha256"]
