"""The offline stand-in foundation model: pretrained without the evaluated dataset, cached,
and loadable as a local folder."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("uni2ts")

from hdt_finetune.finetune.finetune_config import FinetuneConfig  # noqa: E402
from hdt_finetune.finetune.moirai.moirai_weights import load_moirai  # noqa: E402
from hdt_finetune.finetune.pretraining_corpus import CORPUS_VERSION  # noqa: E402
from hdt_finetune.finetune.standin_model import build_standin, standin_corpus  # noqa: E402


def test_corpus_leaves_out_the_evaluated_datasets_family():
    # ETTh1 is the hourly subsample of ETTm1: a stand-in for either has seen neither.
    assert standin_corpus("ETTh1") == ["ETTh2", "ETTm2", "exchange_rate", "generated"]
    assert standin_corpus("ETTm1") == standin_corpus("ETTh1")
    assert standin_corpus("ETTm2") == ["ETTh1", "ETTm1", "exchange_rate", "generated"]
    assert standin_corpus("exchange_rate") == ["ETTh1", "ETTh2", "ETTm1", "ETTm2", "generated"]


def test_standin_is_built_once_and_loads_as_a_folder(tmp_path, shared_data_dir):
    base = FinetuneConfig.from_overrides([
        "model.family=moirai", "model.size=tiny", "max_steps=2", "eval_every=2", "save_every=2",
        "val_stride=400", "test_stride=400", "num_samples=5", "batch_size=8",
        f"out={tmp_path / 'unused'}"])
    folder = build_standin("ETTh1", base, cache=tmp_path / "standin")
    info = json.loads((folder / "standin.json").read_text())
    assert not {"ETTh1", "ETTm1"} & set(info["corpus"]["parts"])
    assert "generated" in info["corpus"]["parts"] and info["excluded_family"] == "ETT transformer 1"
    assert info["steps"] == 2
    assert [row["step"] for row in info["curve"] if "val_mse" in row] == [2]  # eval_every=2
    assert f"corpus{CORPUS_VERSION}" in folder.name  # a new generated mix is a new stand-in
    # The model files' checksum: a stand-in pretrained again elsewhere is told apart.
    from hdt_finetune.checksums import sha256_of, sha256_of_tree

    model_files = {p.name: sha256_of(p) for p in folder.iterdir() if p.name != "standin.json"}
    assert {"config.json", "model.safetensors"} <= set(model_files)
    (tmp_path / "files").mkdir()
    for p in folder.iterdir():
        if p.name != "standin.json":
            (tmp_path / "files" / p.name).write_bytes(p.read_bytes())
    assert info["model_files_sha256"] == sha256_of_tree(tmp_path / "files")
    loaded = load_moirai(str(folder))
    assert loaded.weights == str(folder.resolve()) and loaded.size == "tiny"
    stamp = (folder / "standin.json").stat().st_mtime_ns
    assert build_standin("ETTh1", base, cache=tmp_path / "standin") == folder
    assert (folder / "standin.json").stat().st_mtime_ns == stamp  # reused, not rebuilt
    assert not (tmp_path / "standin" / f"{folder.name}.run").exists()
