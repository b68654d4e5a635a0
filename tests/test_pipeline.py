"""The whole pipeline from the command line, on tiny data: distil (one dataset, or a corpus),
fine-tune on the set with `hdt finetune`, and find the set's checksum in the record."""

from __future__ import annotations

import json

import pytest

from hdt_finetune.cli import main
from hdt_finetune.synthetic import read_synthetic_set
from tests.conftest import sine_frame

pytest.importorskip("accelerate")

TINY_DISTILL = ["context_length=24", "horizon=12", "iterations=6", "top_k=8", "student_steps=3",
                "student_batch=32", "expert_snapshots=1", "max_start_snapshot=2",
                "experts.n_experts=2", "experts.snapshots=3", "experts.snapshot_steps=10",
                "experts.batch_size=16"]
TINY_FINETUNE = ["model.family=patchtst", "model.init=random", "model.size=tiny",
                 "model.patch_size=12", "context_length=24", "horizon=12", "max_steps=2",
                 "eval_every=2", "save_every=2", "batch_size=8", "val_stride=20",
                 "test_stride=20"]


@pytest.fixture
def sine_csv(tmp_path):
    path = tmp_path / "sines.csv"
    sine_frame(rows=1500).to_csv(path, index=False)
    return path


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HDT_CACHE_DIR", str(tmp_path / "cache"))


def finetune(*args: str) -> int:
    return main(["finetune", *TINY_FINETUNE, *args])


def test_distil_then_finetune_then_the_record_names_the_set(tmp_path, sine_csv, capsys):
    out = tmp_path / "hdt_set"
    assert main(["distill", "--dataset", str(sine_csv), "--method", "hdt", "--length", "96",
                 "--out", str(out), "--quiet", *TINY_DISTILL]) == 0
    checksum = read_synthetic_set(out).content_sha256
    assert finetune("--dataset", str(sine_csv), "--train-data", str(out),
                    "--out", str(tmp_path / "run")) == 0
    record = json.loads((tmp_path / "run" / "record.json").read_text())
    assert record["train_data"]["content_sha256"] == checksum
    assert record["train_data"]["method"] == "hdt" and record["steps"] == 2
    assert checksum in capsys.readouterr().out  # the printed summary names the set too

    # A tampered set is refused with one line, before any training.
    arrow = out / "data" / "data-00000-of-00001.arrow"
    arrow.write_bytes(arrow.read_bytes()[:-8])
    assert finetune("--dataset", str(sine_csv), "--train-data", str(out),
                    "--out", str(tmp_path / "again")) == 2
    err = capsys.readouterr().err
    assert "does not match its checksum" in err and "Traceback" not in err


def test_a_corpus_set_fine_tunes(tmp_path, sine_csv):
    pytest.importorskip("uni2ts")
    from hdt_finetune.corpus.generated_corpus import write_generated_corpus

    corpus = write_generated_corpus(tmp_path / "corpus", 40_000, series_length=10_000,
                                    series_per_file=2)
    out = tmp_path / "corpus_set"
    assert main(["distill-corpus", "--corpus", str(corpus), "--method", "hdt", "--length", "96",
                 "--channels", "3", "--window-reservoir", "512", "--pool-size", "64",
                 "--out", str(out), "--quiet", *TINY_DISTILL]) == 0
    synthetic = read_synthetic_set(out)
    assert synthetic.scaling_kind == "per_series" and synthetic.channels[0] == "synthetic_0"
    # Validation and test: the real splits of a dataset given apart from the set.
    assert main(["finetune", "--dataset", str(sine_csv), "--train-data", str(out),
                 "--out", str(tmp_path / "run"), "model.family=moirai", "model.size=tiny",
                 "model.init=random", "model.patch_size=8", "context_length=24", "horizon=12",
                 "max_steps=2", "eval_every=2", "save_every=2", "batch_size=8",
                 "val_stride=20", "test_stride=20", "num_samples=5"]) == 0
    record = json.loads((tmp_path / "run" / "record.json").read_text())
    assert record["train_data"]["content_sha256"] == synthetic.content_sha256
    assert record["train_data"]["scaling"] == "per_series"
    # hdt evaluate trains on a dataset's channels: a corpus set is sent to finetune instead.
    assert main(["evaluate", "--synthetic", str(out), "--dataset", str(sine_csv)]) == 2


def test_a_set_made_on_demand_is_cached_by_what_shapes_it(tmp_path, sine_csv, monkeypatch):
    from hdt_finetune import distillation
    from hdt_finetune.finetune import finetune_command, finetune_loop

    loads = []
    for module in (finetune_command, distillation, finetune_loop):
        original = module.prepare_data
        monkeypatch.setattr(module, "prepare_data",
                            lambda *a, _original=original, **k: loads.append(a) or _original(
                                *a, **k))
    common = ("--dataset", str(sine_csv), "--train-data", "distill:random:48")
    assert finetune(*common, "--out", str(tmp_path / "a")) == 0
    assert len(loads) == 1  # distillation and fine-tune share one load of the dataset
    made = sorted(p for p in (tmp_path / "cache" / "distilled").iterdir()
                  if not p.name.startswith("."))  # not the lock files
    assert len(made) == 1 and made[0].name.startswith("sines-random-M48-seed0-")
    stamp = (made[0] / "manifest.json").stat().st_mtime_ns
    assert finetune(*common, "--out", str(tmp_path / "b")) == 0
    assert (made[0] / "manifest.json").stat().st_mtime_ns == stamp  # reused
    # Another seed, or other data, is another set.
    assert finetune("--dataset", str(sine_csv), "--train-data", "distill:random:48:1",
                    "--out", str(tmp_path / "c")) == 0
    assert len(list((tmp_path / "cache" / "distilled").glob("sines-*"))) == 2
    record = json.loads((tmp_path / "a" / "record.json").read_text())
    assert record["train_data"]["path"] == str(made[0])


def test_evaluate_without_dataset_finds_the_source_in_the_manifest(tmp_path, sine_csv,
                                                                   monkeypatch,
                                                                   shared_data_dir):
    named = tmp_path / "etth1_set"
    assert main(["distill", "--dataset", "ETTh1", "--method", "random", "--length", "192",
                 "--out", str(named)]) == 0
    report = tmp_path / "named.json"
    assert main(["evaluate", "--synthetic", str(named), "--seeds", "1", "max_steps=5",
                 "--json", str(report)]) == 0
    payload = json.loads(report.read_text())
    assert payload["dataset"]["name"] == "ETTh1"  # read by name: the ETT split rule

    out = tmp_path / "set"
    assert main(["distill", "--dataset", str(sine_csv.name), "--method", "random",
                 "--length", "60", "--out", str(out), "context_length=24", "horizon=12"]
                ) == 2  # a relative path that does not exist here
    monkeypatch.chdir(sine_csv.parent)
    assert main(["distill", "--dataset", sine_csv.name, "--method", "random", "--length", "60",
                 "--out", str(out), "context_length=24", "horizon=12"]) == 0
    monkeypatch.chdir(tmp_path.parent)  # elsewhere: the manifest holds the absolute path
    report = tmp_path / "eval.json"
    assert main(["evaluate", "--synthetic", str(out), "--seeds", "1", "context_length=24",
                 "horizon=12", "max_steps=5", "--json", str(report)]) == 0
    payload = json.loads(report.read_text())
    assert payload["dataset"]["source"] == str(sine_csv.resolve())
    assert payload["training_data"]["content_sha256"] == read_synthetic_set(out).content_sha256
