"""`hdt distill-corpus`: distil a corpus larger than memory, in one or many processes.

1. One streaming pass per process over its share of the series (`streaming_pass`): the
   scaler, a uniform sample of training windows, a pool of real length-M subsequences.
2. Experts: DLinear trained by SGD on windows gathered from every process (each adds a
   share proportional to its part of the corpus, see `_expert_windows`); the processes
   train different experts and gather the trajectories, so all hold the same buffer. For
   HDT the windows are cut from the pool's subsequences filtered to their top-k harmonics
   (see `_filtered_windows`).
3. Trajectory matching as for one dataset (`trajectory_distillation`), with the pool as
   the real side and every window normalised by its context. All processes start from the
   main process' initial set; each draws its own experts, starts and real subsequences;
   the gradients of the set and of the student learning rate are averaged, and the
   iterations are split between the processes.

Cost grows with the corpus only in step 1 (linear: each point is parsed once; the main
process reads the files' bytes once more for the corpus checksum); memory is bounded by the
sample sizes, the synthetic set and the expert state. The pass, the experts
and the matching state are checkpointed per process beside the output, so a killed run
resumes without reading the corpus again.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from hdt_finetune.atomic_files import atomic_directory
from hdt_finetune.backbones import DLinearConfig
from hdt_finetune.corpus.corpus_reader import open_corpus
from hdt_finetune.corpus.streaming_pass import CorpusSample, Moments, PassSettings, stream_corpus
from hdt_finetune.distill.expert_buffer import ExpertBuffer, sgd_trajectories
from hdt_finetune.distill.flat_params import normalise_windows
from hdt_finetune.distill.matching_backbone import DLinearMatching
from hdt_finetune.distill.matching_engine import CHECKPOINT, MatchingState, run_matching
from hdt_finetune.distill.real_sampler import PoolSampler
from hdt_finetune.distill.settings import (
    SWITCHES,
    DistillSettings,
    method_settings,
    result_settings,
)
from hdt_finetune.distill.spectral import harmonic_filter, to_spectrum, top_k_mask
from hdt_finetune.process_group import ProcessGroup
from hdt_finetune.provenance import Stopwatch, peak_rss_mb
from hdt_finetune.run_identity import CheckpointError, ForeignCheckpointError, fingerprint
from hdt_finetune.synthetic import check_replaceable, per_series_scaling, write_synthetic_set

log = logging.getLogger(__name__)

CORPUS_METHODS = ("hdt", "mtt", "hdt_freq", "random")


@dataclass(frozen=True)
class CorpusDistillConfig:
    corpus: str  # a folder of CSV/Parquet files, a saved dataset (folder), or hf://owner/name
    out: Path
    method: str = "hdt"
    length: int = 384  # M
    channels: int = 8  # synthetic series of length M
    seed: int = 0
    chunk_rows: int = 100_000
    window_reservoir: int = 65_536
    pool_size: int = 2_048
    freq: str = "h"  # written into the set; a corpus mixes frequencies, so ours is nominal
    settings: DistillSettings | None = None  # None: the method's own (method_settings)
    overwrite: bool = False
    show_progress: bool = True

    def __post_init__(self) -> None:
        if self.method not in CORPUS_METHODS:
            raise ValueError(f"method {self.method!r} is not available for corpora; choose "
                             f"from {', '.join(CORPUS_METHODS)} (CondTSF's value term and "
                             "gradient matching need the whole series in memory)")
        if self.settings is None:
            object.__setattr__(self, "settings", method_settings(self.method))
        for name in ("length", "channels", "chunk_rows", "window_reservoir", "pool_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        window = self.settings.context_length + self.settings.horizon
        if self.length < window:
            raise ValueError(f"length {self.length} is shorter than one window ({window})")
        check_replaceable(Path(self.out), self.overwrite)
        # Corpus windows carry their own scale; the student's must too.
        object.__setattr__(self, "settings",
                           dataclasses.replace(self.settings, window_norm=True))
        object.__setattr__(self, "out", Path(self.out))

    @property
    def checkpoint_dir(self) -> Path:
        return self.out.parent / f".{self.out.name}.checkpoint"


@dataclass
class _RealSide:
    """What one process keeps from the pass and the experts (and checkpoints)."""

    pool: torch.Tensor  # [P, M]
    trajectories: torch.Tensor | None  # [expert, snapshot + 1, parameter]
    moments: Moments
    counts: dict[str, int]
    pass_s: float
    experts_s: float
    source: dict


def distill_corpus(config: CorpusDistillConfig, group: ProcessGroup | None = None) -> Path:
    group = group or ProcessGroup.from_environment()
    clock = Stopwatch()
    folder = config.checkpoint_dir / f"rank{group.rank}-of-{group.world}"
    run_key = _fingerprint(config, group.world)
    real = _load_real_side(folder, run_key) or _build_real_side(config, group, folder,
                                                                    run_key)
    loop = Stopwatch()
    switches = SWITCHES.get(config.method)
    settings, length = config.settings, config.length
    sampler = PoolSampler(real.pool, config.channels)
    history: list[dict[str, float]] = []
    iterations = 0
    if config.method == "random":
        values = sampler.subsequences(length, torch.Generator().manual_seed(config.seed))
        group.broadcast_(values)
        student_lr = None
    else:
        # Each iteration averages the gradients of one matching per process, so N processes
        # run 1/N of the iterations for the same number of matchings.
        shared = dataclasses.replace(settings,
                                     iterations=math.ceil(settings.iterations / group.world))
        state = MatchingState.start(switches, sampler, length, config.seed, shared)
        group.broadcast_(state.param.data)  # one initial set for every process
        if group.rank:  # then each process its own draws of experts, starts and real data
            state.generator.manual_seed(config.seed + 7919 * group.rank)
        state.gradient_reducer = group.mean_
        state.resume_from(folder / CHECKPOINT, run_key)
        # Every process checkpoints on its own: a kill while they saved can leave them at
        # different iterations, which must not be resumed (their averages would mismatch).
        resumed = group.gather(state.iteration)
        if len(set(resumed)) > 1:
            raise CheckpointError(f"the processes' checkpoints in {config.checkpoint_dir} "
                                  f"stopped at different iterations ({resumed}); delete it to "
                                  "start over")
        buffer = ExpertBuffer(real.trajectories, real.experts_s, cached=False, key="corpus")
        student = DLinearMatching(DLinearConfig(settings.context_length, settings.horizon,
                                                config.channels))
        history = run_matching(state, sampler, buffer, student, folder / CHECKPOINT,
                               run_key, f"distill corpus ({config.method})",
                               config.show_progress and group.is_main)
        values = state.series().detach()
        student_lr = state.student_lr
        iterations = state.iteration
    report = {"rank": group.rank, "pass_s": real.pass_s, "experts_s": real.experts_s,
              "loop_s": loop.seconds(), "iterations": iterations, "wall_s": clock.seconds(),
              "peak_rss_mb": peak_rss_mb(),
              "points": real.counts["points"], "moments": asdict(real.moments),
              "counts": real.counts}
    reports = group.gather(report)
    if group.is_main:
        _write(config, values.numpy().astype(np.float32), reports, history, student_lr,
               group.world, real.source)
    group.barrier()
    if group.is_main:
        shutil.rmtree(config.checkpoint_dir, ignore_errors=True)
    return config.out


def _build_real_side(config: CorpusDistillConfig, group: ProcessGroup, folder: Path,
                     run_key: str) -> _RealSide:
    settings = config.settings
    clock = Stopwatch()
    reader = open_corpus(config.corpus, config.chunk_rows)
    sample = stream_corpus(reader, PassSettings(settings.context_length, settings.horizon,
                                                config.length, config.window_reservoir,
                                                config.pool_size),
                           config.seed, group.rank, group.world,
                           config.show_progress and group.is_main)
    pass_s = clock.seconds()
    trajectories = None
    if config.method != "random":
        x, y = _expert_windows(config, sample, group)
        trajectories = _train_experts(x, y, config, group)
    # The corpus' checksum, once (main process): read apart from the pass, it costs only I/O.
    source = {"reader": reader.describe(),
              "sha256": reader.checksum() if group.is_main else None}
    real = _RealSide(torch.from_numpy(sample.pool.filled.copy()), trajectories,
                     sample.moments, sample.counts, pass_s, clock.seconds() - pass_s, source)
    _save_real_side(folder, run_key, real)
    return real


def _expert_windows(config: CorpusDistillConfig, sample: CorpusSample,
                    group: ProcessGroup) -> tuple[torch.Tensor, torch.Tensor]:
    """The experts' training windows, the same in every process: each process adds a share
    of its sample proportional to the windows its part of the corpus holds, so the union is
    a uniform sample of the whole corpus of at most `window_reservoir` windows (one process:
    its whole sample). For HDT the windows are cut from the harmonic-filtered pool."""
    settings = config.settings
    seen = group.gather(sample.windows.seen)
    kept = sample.windows.filled.shape[0]
    if min(seen) == 0:
        raise ValueError(f"a process' share of the corpus holds no window of "
                         f"{settings.context_length + settings.horizon} points (windows per "
                         f"process: {seen}); use fewer processes or a corpus with more or "
                         "longer series")
    share = min(kept, round(config.window_reservoir * seen[group.rank] / sum(seen)))
    generator = torch.Generator().manual_seed(config.seed + group.rank)
    if SWITCHES[config.method].harmonics and settings.filter_experts:
        x, y = _filtered_windows(torch.from_numpy(sample.pool.filled.copy()), settings, share,
                                 generator)
    else:
        windows = torch.from_numpy(sample.windows.filled.copy())
        if share < kept:  # a uniform subsample of a uniform sample stays uniform
            windows = windows[torch.randperm(kept, generator=generator)[:share]]
        x = windows[:, : settings.context_length, None]
        y = windows[:, settings.context_length :, None]
    parts = group.gather((x, y))
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def _train_experts(x: torch.Tensor, y: torch.Tensor, config: CorpusDistillConfig,
                   group: ProcessGroup) -> torch.Tensor:
    """Expert-parallel: process r trains experts r, r + N, ... on the common windows, each
    from a generator of its own (so an expert does not depend on which process trains it or
    how many there are), and every process gathers all trajectories. No communication during
    training: per-step gradient averaging made two processes slower than one."""
    settings = config.settings
    n_experts = settings.experts.n_experts
    mine = list(range(group.rank, n_experts, group.world))
    backbone = DLinearConfig(settings.context_length, settings.horizon, 1)
    runs = sgd_trajectories(
        x, y, lambda: DLinearMatching(backbone), settings.experts,
        [torch.Generator().manual_seed(config.seed * 1_000_003 + e) for e in mine],
        config.show_progress and group.is_main) if mine else None
    gathered = group.gather(runs)
    return torch.stack([gathered[e % group.world][e // group.world] for e in range(n_experts)])


def _filtered_windows(pool: torch.Tensor, settings: DistillSettings, count: int,
                      generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """HDT's experts learn from harmonic-filtered data. As for one series (where the train
    split is filtered in segments of length M), each real length-M subsequence of the pool
    keeps its own top-k harmonics; `count` windows are then cut at random from the filtered
    subsequences and normalised by their context, as the student's windows are. Windows
    whose filtered context is flat are dropped: normalising them would blow them up."""
    series = pool.T  # [M, P]
    filtered = harmonic_filter(series, top_k_mask(to_spectrum(series), settings.top_k))
    width = settings.context_length + settings.horizon
    column = torch.randint(0, filtered.shape[1], (count,), generator=generator)
    first = torch.randint(0, filtered.shape[0] - width + 1, (count,), generator=generator)
    windows = filtered[first[:, None] + torch.arange(width), column[:, None]]  # [count, W]
    x = windows[:, : settings.context_length, None]
    y = windows[:, settings.context_length :, None]
    keep = x.std(dim=(1, 2)) > 1e-3
    return normalise_windows(x[keep], y[keep])


def _save_real_side(folder: Path, run_key: str, real: _RealSide) -> None:
    tensors = {"pool": real.pool.contiguous()}
    if real.trajectories is not None:
        tensors["trajectories"] = real.trajectories.contiguous()
    with atomic_directory(folder / "real_side", overwrite=True) as tmp:
        save_file(tensors, str(tmp / "tensors.safetensors"))
        (tmp / "meta.json").write_text(json.dumps({
            "fingerprint": run_key, "moments": asdict(real.moments),
            "counts": real.counts, "pass_s": real.pass_s, "experts_s": real.experts_s,
            "source": real.source}))


def _load_real_side(folder: Path, run_key: str) -> _RealSide | None:
    meta_path = folder / "real_side" / "meta.json"
    if not meta_path.exists():
        return None
    meta = json.loads(meta_path.read_text())
    if meta.get("fingerprint") != run_key:
        raise ForeignCheckpointError(f"{folder} belongs to another run (other corpus, method, "
                              "settings or process count); delete it or choose another --out")
    tensors = load_file(str(folder / "real_side" / "tensors.safetensors"))
    log.info("resuming from %s: the corpus is not read again", folder)
    return _RealSide(tensors["pool"], tensors.get("trajectories"), Moments(**meta["moments"]),
                     meta["counts"], meta["pass_s"], meta["experts_s"], meta["source"])


def _fingerprint(config: CorpusDistillConfig, world: int) -> str:
    payload = {k: v for k, v in asdict(config).items()
               if k not in ("out", "overwrite", "show_progress", "settings")}
    return fingerprint({**payload, "settings": result_settings(config.settings),
                        "world": world})


def _write(config: CorpusDistillConfig, values: np.ndarray, reports: list[dict],
           history: list[dict], student_lr: float | None, world: int, source: dict) -> None:
    moments = Moments()
    for report in reports:
        moments.merge(Moments(**report["moments"]))
    counts = {key: sum(r["counts"][key] for r in reports) for key in reports[0]["counts"]}
    if counts["windows_skipped"]:
        log.warning("skipped %d windows holding non-finite values, outliers or a constant "
                    "context", counts["windows_skipped"])
    wall = max(r["wall_s"] for r in reports)
    manifest = {
        "method": config.method,
        "settings": {"length": config.length, "channels": config.channels,
                     "chunk_rows": config.chunk_rows,
                     "window_reservoir": config.window_reservoir,
                     "pool_size": config.pool_size, **asdict(config.settings)},
        "seed": config.seed,
        # The statistics of every finite point of every process' share; the set itself is in
        # per-window normalised units, so its scaling is its own (per_series).
        "source": {"kind": "corpus", "corpus": config.corpus, **source, "counts": counts,
                   "moments": {"mean": moments.mean, "std": moments.std,
                               "count": moments.count}},
        "scaling": per_series_scaling(values),
        "method_info": {"student_lr": student_lr, "loss_curve": history},
        "cost": {
            "wall_s": wall, "processes": world, "threads": torch.get_num_threads(),
            "peak_rss_mb": max(r["peak_rss_mb"] or 0 for r in reports),
            "per_process": [{k: r[k] for k in ("rank", "pass_s", "experts_s", "loop_s",
                                                "iterations", "wall_s", "peak_rss_mb",
                                                "points")}
                            | {"points_per_s": r["points"] / max(r["pass_s"], 1e-9)}
                            for r in reports],
        },
    }
    columns = [f"synthetic_{i}" for i in range(values.shape[1])]
    write_synthetic_set(config.out, values, columns, config.freq,
                        pd.Timestamp("2000-01-01"), manifest, overwrite=config.overwrite)
    log.info("wrote %s (%s, %d steps x %d series, %d processes, %.0f s)", config.out,
             config.method, values.shape[0], values.shape[1], world, wall)
