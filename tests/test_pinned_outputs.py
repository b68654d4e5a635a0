"""Pins the exact outputs of the pipeline: the sha256 of a small set made by every method
(ETTh1, M = 192, 20 iterations, 2 experts), of a tiny corpus distillation and of a 3-step
fine-tune's weights, at one thread (conftest.py; a set's bits depend on the thread count).
A refactor must keep them bit for bit; a change that alters one on purpose updates the
digest here and says why in its commit. The trajectory methods' digests changed with
DLinear's closed-form fast path (the same algorithm, other float rounding; quality checked
in benchmarks/results/distill_speed/report.md). Random's changed when it began to draw with
the trajectory methods' generator (it is now their initial series)."""

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
    "random": "45acb372c1e277f8fd2758e5a2bf782d8163043dc69e68c7c3910c24462fb511",
    "base": "34918b10f63bbe52b3157147f5a73d835a293a54b45b1a00b30f33d70e004d3d",
    "mtt": "887762bbf198e86bf6990e9755ae5506a45a76bd0879ba96c3c74e8de27e1320",
    "condtsf": "49640e8c4af87627751280d8e3e86ec009483a9ddbfb26cbc218b2701343794d",
    "hdt": "f023b99076356219c9bf6cdd67d20e200eab768cb2b22f1bcbffd89e36c86d86",
    "hdt_freq": "88fac2f2dd101e53b32e33acd11285cbf58fcfd42971623a71aef2e8366af3c1",
    "hdt_harm": "38f09346e118a0be16ee54aa6903fe85e3f76cc344fc144313c41b81ae048443",
}
CORPUS_DIGEST = "6c90bbf1d30a6e0c8bda5105845c56edce8f0f73ecccbf3b786e4e57d3f761df"
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
