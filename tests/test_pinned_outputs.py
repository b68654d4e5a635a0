"""Pins the exact outputs of the pipeline: the sha256 of a small set made by every method
(ETTh1, M = 192, 20 iterations, 2 experts), of a tiny corpus distillation and of a 3-step
fine-tune's weights. A refactor must keep them bit for bit; a change that alters one on
purpose updates the digest here and says why in its commit."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from hdt_finetune.data import DataSpec
from hdt_finetune.distill.settings import DistillSettings
from hdt_finetune.distillation import DistillConfig, run_distillation
from hdt_finetune.synthetic import read_synthetic_set
from hdt_finetune.typed_overrides import apply_overrides

SET_DIGESTS = {
    "random": "cb0c2eb17fad9324a6a316b78fda90cb5076678fa81410b37b7820e321297979",
    "base": "34918b10f63bbe52b3157147f5a73d835a293a54b45b1a00b30f33d70e004d3d",
    "mtt": "9379ffb4169f0ad081578db34dae29f478458806182883c67ffa7fb05d2e13ff",
    "condtsf": "41aeae3f14d5d7426235b4fe8d9ff38c15613535ef5d024869c8285c349e7aa3",
    "hdt": "974eeb28bb8861e81621e8571c5e15d8a65ba108de55fd176178ce6f641d5241",
    "hdt_freq": "f811fa65803b3353b9485073d169f5fc9c20d867d3c28fd064bd65b15f950ec5",
    "hdt_harm": "38f09346e118a0be16ee54aa6903fe85e3f76cc344fc144313c41b81ae048443",
}
CORPUS_DIGEST = "50a08a93d0bddfcd4acc8c478082778d54f9fbddcbf21409abe791fb1aa4bb91"
FINETUNE_DIGEST = "48ed5a7ae9598d73cd307464b622c39dfba26cfdfb27d156d397f4841f5d9d97"


def values_digest(values: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(values, dtype=np.float32).tobytes()).hexdigest()


def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        digest.update(name.encode())
        digest.update(tensors[name].contiguous().numpy().tobytes())
    return digest.hexdigest()


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HDT_CACHE_DIR", str(tmp_path / "cache"))


def test_every_method_makes_the_pinned_set(tmp_path, shared_data_dir, private_cache):
    settings = apply_overrides(DistillSettings(), ["iterations=20", "experts.n_experts=2"])
    digests = {}
    for method in SET_DIGESTS:
        folder = run_distillation(DistillConfig(
            data=DataSpec("ETTh1"), method=method, out=tmp_path / method, length=192, seed=0,
            settings=settings, show_progress=False))
        digests[method] = values_digest(read_synthetic_set(folder).values)
    assert digests == SET_DIGESTS


def test_a_corpus_distillation_makes_the_pinned_set(tmp_path):
    from hdt_finetune.corpus import CorpusDistillConfig, distill_corpus
    from hdt_finetune.corpus.generated_corpus import write_generated_corpus
    from hdt_finetune.process_group import ProcessGroup

    corpus = write_generated_corpus(tmp_path / "corpus", 60_000, series_length=10_000,
                                    series_per_file=3)
    settings = apply_overrides(DistillSettings(), [
        "iterations=20", "experts.n_experts=2", "experts.snapshots=8",
        "experts.snapshot_steps=20"])
    out = distill_corpus(CorpusDistillConfig(
        corpus=str(corpus), out=tmp_path / "set", method="hdt", length=192, channels=3,
        window_reservoir=2048, pool_size=128, settings=settings, show_progress=False),
        ProcessGroup())
    assert values_digest(read_synthetic_set(out).values) == CORPUS_DIGEST


def test_a_three_step_finetune_makes_the_pinned_weights(tmp_path, shared_data_dir):
    pytest.importorskip("uni2ts")
    from hdt_finetune.finetune.finetune_config import FinetuneConfig
    from hdt_finetune.finetune.finetune_loop import run_finetune

    run_finetune(FinetuneConfig.from_overrides([
        "model.family=moirai", "model.size=tiny", "model.init=random", "dataset=ETTh1",
        "train_data=full", "max_steps=3", "batch_size=8", "eval_every=3", "save_every=3",
        "val_stride=400", "test_stride=400", "num_samples=5", f"out={tmp_path / 'run'}"]))
    weights = load_file(str(tmp_path / "run" / "model" / "model.safetensors"))
    assert tensors_digest(weights) == FINETUNE_DIGEST
