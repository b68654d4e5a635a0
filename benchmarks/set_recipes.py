"""The training sets the fine-tuning benchmarks try, as recipes: which method, M, seed and
settings make each member set, and which members a candidate trains on together (a mix such
as a few-shot real subset plus an HDT set). Shared by the screen (fm_screening.py) and the
fine-tuning benchmark (finetune_cost.py).

A member that needs the foundation model (hdt_fm) names it with the placeholder
`fm.source={weights}`, filled in per dataset with the weights the fine-tune starts from, so
that the set is distilled for the model that trains on it (and never saw the dataset's
family either).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

from benchmark_jobs import SMOKE_DISTILL, BenchmarkPaths

WEIGHTS = "{weights}"
# A smoke run's set for the model is made with the tiny random-init model it fine-tunes.
SMOKE_FM = ("fm.size=tiny", "fm.real_windows=16", "fm.windows=4")


@functools.cache
def folder_sha256(folder: str) -> str:
    """The checksum of a weights folder's contents, read once per process: weights do not
    change while a benchmark runs, and a stand-in is tens of MB checked for every job."""
    from hdt_finetune.checksums import sha256_of_tree

    return sha256_of_tree(Path(folder))


def weights_key(weights: str) -> str:
    """Ten hex digits of the weights' identity: a folder's contents, else the name (a hub
    id, or "random")."""
    if Path(weights).is_dir():
        return folder_sha256(str(Path(weights).resolve()))[:10]
    return hashlib.sha256(weights.encode()).hexdigest()[:10]


@dataclass(frozen=True)
class SetRecipe:
    method: str
    length: int = 384
    settings: tuple[str, ...] = ()
    seed: int = 0

    def folder(self, paths: BenchmarkPaths, dataset: str, weights: str) -> Path:
        """Reference recipes keep the folder name the benchmarks always used; a recipe with
        settings gets a name that spells them, and one distilled for a model the checksum of
        the model's files (a set made for other weights, such as a stand-in pretrained again
        at the same path, is never taken for it)."""
        name = f"{dataset}_{self.method}_M{self.length}_seed{self.seed}"
        if self.settings:
            model = f"model-{weights_key(weights)}" if self.needs_model else ""
            name += "__" + "_".join(s.replace("=", "-").replace(WEIGHTS, model)
                                    for s in self.settings)
        return paths.sets / name

    def resolved(self, weights: str) -> tuple[str, ...]:
        return tuple(s.replace(WEIGHTS, weights) for s in self.settings)

    @property
    def needs_model(self) -> bool:
        return any(WEIGHTS in s for s in self.settings)


@dataclass(frozen=True)
class Candidate:
    name: str
    family: str  # "hdt" (this variants), "condtsf", "random" or "full"
    members: tuple[SetRecipe, ...]  # empty: the full train split
    note: str

    def train_data(self, paths: BenchmarkPaths, dataset: str, weights: str) -> str:
        if not self.members:
            return "full"
        return "+".join(str(m.folder(paths, dataset, weights)) for m in self.members)


FM = (f"fm.source={WEIGHTS}",)
FEW_SHOT = SetRecipe("random", seed=1)  # a real subset other than the Random arm's own
SOFT_05 = ("value_beta=0.5",)
LITE = ("iterations=100",)

# Equal tuning budgets: the HDT variants and CondTSF get as many configurations each, the
# same levers where they apply (soft targets are CondTSF's own, so it varies their weight and
# interval instead of adding them); Random comes at every size a larger or mixed set has.
CANDIDATES = (
    Candidate("full", "full", (), "the full train split"),
    Candidate("hdt", "hdt", (SetRecipe("hdt"),), "HDT as published (DLinear trajectories)"),
    Candidate("hdt_soft", "hdt", (SetRecipe("hdt_soft"),),
              "HDT + CondTSF's value term (beta 0.2 every 20)"),
    Candidate("hdt_soft_b05", "hdt", (SetRecipe("hdt_soft", settings=SOFT_05),),
              "HDT + value term at CondTSF's tuned beta 0.5"),
    Candidate("hdt_fm", "hdt", (SetRecipe("hdt_fm", settings=FM),),
              "HDT matched in the fine-tuned model's embedding space"),
    Candidate("hdt_fm_soft", "hdt", (SetRecipe("hdt_fm_soft", settings=FM),),
              "hdt_fm + soft targets from the fine-tuned model's own forecasts"),
    # A second-order pass per iteration: 8 synthetic windows a channel keep it at about a
    # third of hdt_fm's FLOPs. The real gradient, fixed, comes from fm.real_windows (spelled out so
    # that the sets made when it was drawn afresh from 8 windows each iteration are not reused).
    Candidate("hdt_gm", "hdt", (SetRecipe("hdt_gm", settings=(*FM, "fm.windows=8",
                                                              "fm.real_windows=512")),),
              "HDT matching the fine-tuned model's head gradients (real vs synthetic)"),
    # Through the model, a distillation iteration costs several fine-tuning steps (hdt_fm's
    # 400 iterations of 32 windows a channel are ~1,900 steps' FLOPs on ETTh1): a quarter of
    # the iterations on a quarter of the windows, for the equal-compute comparison.
    Candidate("hdt_fm_lite", "hdt", (SetRecipe("hdt_fm", settings=(*FM, *LITE, "fm.windows=8",
                                                                   "fm.real_windows=128")),),
              "hdt_fm at 100 iterations of 8 windows a channel (~1/16 of its FLOPs)"),
    Candidate("fewshot+hdt_soft", "hdt", (FEW_SHOT, SetRecipe("hdt_soft")),
              "a few-shot real subset (384) + hdt_soft"),
    Candidate("fewshot+hdt_fm", "hdt", (FEW_SHOT, SetRecipe("hdt_fm", settings=FM)),
              "a few-shot real subset (384) + hdt_fm"),
    Candidate("hdt_M1536", "hdt", (SetRecipe("hdt", length=1536),), "HDT at M = 1536"),
    Candidate("hdt_M4096", "hdt", (SetRecipe("hdt", length=4096),), "HDT at M = 4096"),
    Candidate("condtsf", "condtsf", (SetRecipe("condtsf"),), "CondTSF, its tuned settings"),
    Candidate("condtsf_b02", "condtsf", (SetRecipe("condtsf", settings=("value_beta=0.2",)),),
              "CondTSF at beta 0.2"),
    Candidate("condtsf_b08", "condtsf", (SetRecipe("condtsf", settings=("value_beta=0.8",)),),
              "CondTSF at beta 0.8"),
    Candidate("condtsf_every5", "condtsf",
              (SetRecipe("condtsf", settings=("value_every=5",)),),
              "CondTSF, value term every 5 iterations"),
    Candidate("condtsf_every10", "condtsf",
              (SetRecipe("condtsf", settings=("value_every=10",)),),
              "CondTSF, value term every 10 iterations"),
    Candidate("condtsf_fm", "condtsf", (SetRecipe("condtsf_fm", settings=FM),),
              "CondTSF whose value term's expert is the fine-tuned model (as hdt_fm_soft's)"),
    Candidate("condtsf_lite", "condtsf", (SetRecipe("condtsf", settings=LITE),),
              "CondTSF at 100 iterations (a quarter of its distillation)"),
    Candidate("fewshot+condtsf", "condtsf", (FEW_SHOT, SetRecipe("condtsf")),
              "a few-shot real subset (384) + CondTSF"),
    Candidate("fewshot+condtsf_b08", "condtsf",
              (FEW_SHOT, SetRecipe("condtsf", settings=("value_beta=0.8",))),
              "a few-shot real subset (384) + CondTSF at beta 0.8"),
    Candidate("condtsf_M1536", "condtsf", (SetRecipe("condtsf", length=1536),),
              "CondTSF at M = 1536"),
    Candidate("condtsf_M4096", "condtsf", (SetRecipe("condtsf", length=4096),),
              "CondTSF at M = 4096"),
    Candidate("random", "random", (SetRecipe("random"),), "a real subsequence, M = 384"),
    Candidate("random_M768", "random", (SetRecipe("random", length=768),),
              "a real subsequence as long as a mix of two 384 sets"),
    Candidate("random_M1536", "random", (SetRecipe("random", length=1536),),
              "a real subsequence, M = 1536"),
    Candidate("random_M4096", "random", (SetRecipe("random", length=4096),),
              "a real subsequence, M = 4096"),
)
BY_NAME = {c.name: c for c in CANDIDATES}


def distil_jobs(paths: BenchmarkPaths, dataset: str, candidates: list[Candidate],
                weights: str, smoke: bool) -> list[dict]:
    """`benchmark_jobs.distil_job` jobs for every member set not made yet (each once)."""
    from benchmark_jobs import set_is_current

    jobs, seen = [], set()
    for candidate in candidates:
        for member in candidate.members:
            folder = member.folder(paths, dataset, weights)
            if folder in seen or set_is_current(folder):
                continue
            seen.add(folder)
            smoke_settings = ((*SMOKE_DISTILL, *(SMOKE_FM if member.needs_model else ()))
                              if smoke else ())
            jobs.append({"dataset": dataset, "method": member.method, "length": member.length,
                         "seed": member.seed, "set": str(folder),
                         "settings": [*member.resolved(weights), *smoke_settings]})
    return jobs


def sets_sha256(paths: BenchmarkPaths, dataset: str, candidate: Candidate,
                weights: str) -> list[str]:
    """The checksums of a candidate's member sets, as its records carry them."""
    from hdt_finetune.synthetic import read_synthetic_set

    return [read_synthetic_set(m.folder(paths, dataset, weights)).content_sha256
            for m in candidate.members]
