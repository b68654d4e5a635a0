"""Wall time of each trajectory-matching distillation against its FLOP floor on this machine.

    python benchmarks/distill_speed.py run [methods=mtt,condtsf,hdt,hdt_freq] [threads=2]
    python benchmarks/distill_speed.py profile [label=after]  # where HDT's time goes
    python benchmarks/distill_speed.py quality [label=after]  # test MSE over 3 seeds
    python benchmarks/distill_speed.py report  # regenerate the summary from the records
    python benchmarks/distill_speed.py run smoke=true   # seconds: tiny settings, runs/smoke/

`run` times one `hdt distill` per (method, dataset) at M = 384 and today's default settings,
each in a fresh process with an empty expert cache, one after another (run it with nothing
else on the machine). The expert buffer's build is timed apart from the matching loop, by
the distillation itself (its manifest). A 2048 x 2048 float32 matmul at the same thread
count calibrates the machine's throughput in the same run.

`profile` times one HDT distillation on ETTh1 by phase (every phase's own time, nested calls
subtracted) and profiles a few iterations and expert steps with torch.profiler by kind:
kernels (aten ops), autograd (the engine's backward nodes) and the rest (Python).

`quality` checks that a speed-up that changes the numbers keeps the sets' quality: HDT
distilled with 3 seeds on ETTh1 and ETTh2, each set evaluated by DLinear, iTransformer and
xPatch with 2 training seeds (records in results/distill_speed/quality/).

One JSON record per (label, method, dataset) in results/distill_speed/records/; label=before
is the code before the speed-up (run this program against that checkout), label=after
today's. `report` adds the analytic FLOPs (`hdt_finetune.distill.distill_flops`) and writes
results/distill_speed_summary.json:
`{method: {dataset: {wall_s, experts_wall_s, flops, floor_s, wall_s_before, threads}}}`,
where floor_s = the FLOPs of the unrolled algorithm at today's defaults / the calibrated
matmul throughput.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmark_jobs import SMOKE_DISTILL, BenchmarkPaths, ReportArgs, command_line

METHODS = ("mtt", "condtsf", "hdt", "hdt_freq")
DATASETS = ("ETTh1", "ETTm1")
LENGTH = 384


@dataclass(frozen=True)
class RunArgs:
    methods: str = ",".join(METHODS)
    datasets: str = ",".join(DATASETS)
    threads: int = 2
    label: str = "after"  # before: the code before the speed-up
    smoke: bool = False  # seconds-long settings, records under runs/smoke/


def matmul_gflops(threads: int, size: int = 2048, repeats: int = 10) -> float:
    """Throughput of a float32 size x size matmul at `threads` threads (best of `repeats`)."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # warm-up: allocator and thread pool
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def time_one(job: dict) -> dict:
    """One distillation in this (fresh) process, with an empty expert cache."""
    import torch

    torch.set_num_threads(job["threads"])
    from hdt_finetune.data import DataSpec
    from hdt_finetune.distill.settings import DistillSettings
    from hdt_finetune.distillation import DistillConfig, run_distillation
    from hdt_finetune.provenance import git_commit, machine, package_versions, peak_rss_mb
    from hdt_finetune.synthetic import read_synthetic_set
    from hdt_finetune.typed_overrides import apply_overrides

    settings = apply_overrides(DistillSettings(), list(job["settings"]))
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["HDT_CACHE_DIR"] = str(Path(tmp) / "cache")
        out = Path(tmp) / "set"
        start = time.perf_counter()
        run_distillation(DistillConfig(data=DataSpec(job["dataset"]), method=job["method"],
                                       out=out, length=LENGTH, seed=0, settings=settings,
                                       show_progress=False))
        wall_s = time.perf_counter() - start
        synthetic = read_synthetic_set(out)
    info = synthetic.manifest["method_info"]
    return {
        "status": "ok", "label": job["label"], "method": job["method"],
        "dataset": job["dataset"], "length": LENGTH, "settings": job["settings"],
        "distill_settings": synthetic.manifest["settings"],
        "source": synthetic.manifest["source"],
        "wall_s": wall_s, "experts_wall_s": info["expert_buffer"]["wall_s"],
        "loop_wall_s": info["loop_wall_s"], "set_sha256": synthetic.content_sha256,
        "threads": torch.get_num_threads(), "matmul_gflops": job["matmul_gflops"],
        "peak_rss_mb": peak_rss_mb(), "versions": package_versions(), "git": git_commit(),
        "machine": machine(),
    }


def run(args: RunArgs) -> None:
    from hdt_finetune.atomic_files import atomic_write_json

    records = BenchmarkPaths.of(args.smoke).results / "distill_speed" / "records"
    gflops = matmul_gflops(args.threads)
    print(f"matmul 2048^2 float32, {args.threads} thread(s): {gflops:.1f} GFLOP/s", flush=True)
    context = multiprocessing.get_context("spawn")
    for dataset in args.datasets.split(","):
        for method in args.methods.split(","):
            path = records / f"{args.label}_{method}_{dataset}.json"
            if path.exists():
                continue
            job = {"label": args.label, "method": method, "dataset": dataset,
                   "threads": args.threads, "matmul_gflops": gflops,
                   "settings": list(SMOKE_DISTILL) if args.smoke else []}
            with context.Pool(1) as pool:  # a fresh process: no warm caches between runs
                record = pool.apply(time_one, (job,))
            atomic_write_json(path, record)
            print(f"{args.label} {method} {dataset}: {record['wall_s']:.1f} s "
                  f"(experts {record['experts_wall_s']:.1f} s)", flush=True)


@dataclass(frozen=True)
class ProfileArgs:
    threads: int = 2
    label: str = "after"
    iterations: int = 10  # matching iterations under torch.profiler
    smoke: bool = False


# Phases of a distillation: (phase, module, attribute) of the function that does it.
PHASES = (
    ("experts", "hdt_finetune.distill.trajectory_distillation", "load_or_train_experts"),
    ("sampling", "hdt_finetune.distill.real_sampler", "SeriesSampler.subsequences"),
    ("fft_harmonics", "hdt_finetune.distill.matching_engine", "to_spectrum"),
    ("fft_harmonics", "hdt_finetune.distill.matching_engine", "top_k_mask"),
    ("fft_harmonics", "hdt_finetune.distill.matching_engine", "harmonic_loss"),
    ("fft_harmonics", "hdt_finetune.distill.matching_engine", "to_series"),
    ("student_steps", "hdt_finetune.distill.matching_engine", "MatchingState._trajectory_loss"),
    ("stable_lr_bound", "hdt_finetune.distill.matching_backbone",
     "DLinearMatching.max_student_lr"),
    ("meta_backward", "torch", "Tensor.backward"),
    ("optimiser", "torch.optim", "Adam.step"),
    ("value_term", "hdt_finetune.distill.matching_engine", "MatchingState._value_term"),
    ("checkpointing", "hdt_finetune.distill.matching_engine", "MatchingState.save"),
    ("iteration_other", "hdt_finetune.distill.matching_engine", "MatchingState.step"),
)


class PhaseClock:
    """Exclusive wall time per phase: a wrapped call's time, less that of the wrapped calls
    inside it."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.stack: list[float] = []  # time spent in nested wrapped calls, per open call

    def wrap(self, phase: str, function):
        import functools

        @functools.wraps(function)
        def timed(*args, **kwargs):
            self.stack.append(0.0)
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                nested = self.stack.pop()
                self.seconds[phase] = self.seconds.get(phase, 0.0) + elapsed - nested
                if self.stack:
                    self.stack[-1] += elapsed
        return timed

    def install(self) -> None:
        import importlib

        for phase, module_name, attribute in PHASES:
            owner = importlib.import_module(module_name)
            *path, name = attribute.split(".")
            for part in path:
                owner = getattr(owner, part)
            setattr(owner, name, self.wrap(phase, getattr(owner, name)))


def by_kind(function) -> dict[str, float]:
    """Wall time of `function` split into kernels (aten ops' own time), autograd (the
    engine's backward nodes' own time) and the rest (Python and glue)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        function()
        wall = time.perf_counter() - start
    kernels = autograd = 0.0
    for event in prof.key_averages():
        own = event.self_cpu_time_total / 1e6
        if event.key.startswith("aten::"):
            kernels += own
        elif "Backward" in event.key or event.key.startswith("autograd::"):
            autograd += own
    return {"wall_s": wall, "kernels_s": kernels, "autograd_s": autograd,
            "python_and_glue_s": wall - kernels - autograd}


def profile_hdt(job: dict) -> dict:
    """In a fresh process: one HDT distillation timed by phase, then a short torch.profiler
    pass over matching iterations and expert steps."""
    import numpy as np
    import torch

    torch.set_num_threads(job["threads"])
    from hdt_finetune.backbones import DLinearConfig
    from hdt_finetune.data import DataSpec, prepare_data
    from hdt_finetune.distill.expert_buffer import sgd_trajectories
    from hdt_finetune.distill.flat_params import windows_of
    from hdt_finetune.distill.matching_backbone import DLinearMatching
    from hdt_finetune.distill.matching_engine import MatchingState
    from hdt_finetune.distill.real_sampler import SeriesSampler
    from hdt_finetune.distill.settings import SWITCHES, DistillSettings
    from hdt_finetune.distill.trajectory_distillation import _experts
    from hdt_finetune.distillation import DistillConfig, run_distillation
    from hdt_finetune.provenance import git_commit, machine, package_versions
    from hdt_finetune.typed_overrides import apply_overrides

    settings = apply_overrides(DistillSettings(), list(job["settings"]))
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["HDT_CACHE_DIR"] = str(Path(tmp) / "cache")
        clock = PhaseClock()
        clock.install()
        start = time.perf_counter()
        run_distillation(DistillConfig(data=DataSpec("ETTh1"), method="hdt",
                                       out=Path(tmp) / "set", length=LENGTH, seed=0,
                                       settings=settings, show_progress=False))
        wall = time.perf_counter() - start
        phases = {"total_wall_s": wall, **{k: v for k, v in clock.seconds.items()}}
        phases["outside_phases"] = wall - sum(clock.seconds.values())

        data = prepare_data("ETTh1")
        real = torch.as_tensor(np.asarray(data.train, dtype=np.float32))
        switches = SWITCHES["hdt"]
        source_id = {"dataset": data.name, "sha256": data.sha256,  # as run_distillation's:
                     "rows": list(data.borders.train), "columns": list(data.columns)}
        buffer = _experts(switches, real, LENGTH, 0, settings, source_id,  # the cached one
                          Path(tmp) / "cache" / "experts", False)
        sampler = SeriesSampler(real)
        state = MatchingState.start(switches, sampler, LENGTH, 0, settings)
        student = DLinearMatching(DLinearConfig(settings.context_length, settings.horizon,
                                                real.shape[1]))
        state.step(sampler, buffer, student)  # warm-up

        def iterations():
            for _ in range(job["iterations"]):
                state.step(sampler, buffer, student)

        matching = by_kind(iterations)
        x, y = windows_of(real, settings.context_length, settings.horizon)
        one_snapshot = dataclasses.replace(settings.experts, n_experts=1, snapshots=1)
        experts = by_kind(lambda: sgd_trajectories(
            x, y, lambda: DLinearMatching(DLinearConfig(settings.context_length,
                                                        settings.horizon, real.shape[1])),
            one_snapshot, [torch.Generator().manual_seed(0)], False))
    return {"status": "ok", "label": job["label"], "method": "hdt", "dataset": "ETTh1",
            "length": LENGTH, "settings": job["settings"], "phases_s": phases,
            "matching_by_kind": {**matching, "iterations": job["iterations"]},
            "experts_by_kind": {**experts, "steps": one_snapshot.snapshot_steps},
            "threads": torch.get_num_threads(), "versions": package_versions(),
            "git": git_commit(), "machine": machine()}


def profile(args: ProfileArgs) -> None:
    from hdt_finetune.atomic_files import atomic_write_json

    path = (BenchmarkPaths.of(args.smoke).results / "distill_speed" /
            f"profile_{args.label}.json")
    job = {"label": args.label, "threads": args.threads, "iterations": args.iterations,
           "settings": list(SMOKE_DISTILL) if args.smoke else []}
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        record = pool.apply(profile_hdt, (job,))
    atomic_write_json(path, record)
    print(f"profile {args.label}: {record['phases_s']['total_wall_s']:.1f} s", flush=True)


@dataclass(frozen=True)
class QualityArgs:
    label: str = "after"
    methods: str = "hdt"
    datasets: str = "ETTh1,ETTh2"
    seeds: int = 3  # distillation seeds
    training_seeds: int = 2  # per backbone and set
    backbones: str = "dlinear,itransformer,xpatch"
    workers: int = 2
    smoke: bool = False


def distil_seed(job: dict) -> str:
    import torch

    torch.set_num_threads(1)
    from hdt_finetune.data import DataSpec
    from hdt_finetune.distill.settings import DistillSettings
    from hdt_finetune.distillation import DistillConfig, run_distillation
    from hdt_finetune.typed_overrides import apply_overrides

    os.environ["HDT_CACHE_DIR"] = job["cache"]
    settings = apply_overrides(DistillSettings(), list(job["settings"]))
    out = Path(job["set"])
    run_distillation(DistillConfig(data=DataSpec(job["dataset"]), method=job["method"],
                                   out=out, length=LENGTH, seed=job["seed"],
                                   overwrite=out.exists(), settings=settings,
                                   show_progress=False))
    return f"distilled {out}"


def evaluate_seed(job: dict) -> str:
    import torch

    torch.set_num_threads(1)
    from hdt_finetune.atomic_files import atomic_write_json
    from hdt_finetune.data import prepare_data
    from hdt_finetune.evaluation import TrainingRecipe, evaluate_backbone
    from hdt_finetune.provenance import git_commit, machine, package_versions
    from hdt_finetune.synthetic import read_synthetic_set

    data = prepare_data(job["dataset"])
    synthetic = read_synthetic_set(job["set"])
    result = evaluate_backbone(synthetic.values, data, job["backbone"],
                               list(range(job["training_seeds"])), TrainingRecipe(),
                               show_progress=False)
    atomic_write_json(job["record"], {
        "status": "ok", "label": job["label"], "dataset": job["dataset"],
        "method": job["method"], "distill_seed": job["seed"], "backbone": job["backbone"],
        "set_sha256": synthetic.content_sha256, **result.to_dict(), "threads": 1,
        "versions": package_versions(), "git": git_commit(), "machine": machine()})
    return f"{job['label']} {job['dataset']} seed {job['seed']} {job['backbone']}: " \
           f"{result.mse_mean:.4f}"


def quality(args: QualityArgs) -> None:
    from benchmark_jobs import run_in_workers

    paths = BenchmarkPaths.of(args.smoke)
    records = paths.results / "distill_speed" / "quality"
    sets = paths.work / "distill_speed_sets" / args.label
    distils, evals = [], []
    for dataset in args.datasets.split(","):
        for method in args.methods.split(","):
            for seed in range(args.seeds):
                cell = {"label": args.label, "dataset": dataset, "method": method,
                        "seed": seed, "set": str(sets / f"{dataset}_{method}_s{seed}"),
                        "cache": str(sets / "cache"),
                        "settings": list(SMOKE_DISTILL) if args.smoke else []}
                missing = [b for b in args.backbones.split(",") if not (
                    records / f"{args.label}_{dataset}_{method}_s{seed}_{b}.json").exists()]
                if missing and not (Path(cell["set"]) / "manifest.json").exists():
                    distils.append(cell)
                evals += [{**cell, "backbone": b, "training_seeds": args.training_seeds,
                           "record": str(records / f"{args.label}_{dataset}_{method}_s{seed}_"
                                                   f"{b}.json")} for b in missing]
    run_in_workers(distil_seed, distils, args.workers)  # each seed has its own experts
    run_in_workers(evaluate_seed, evals, args.workers)


def main(argv: list[str] | None = None) -> int:
    command, args = command_line(
        argv, {"run": RunArgs(), "profile": ProfileArgs(), "quality": QualityArgs(),
               "report": ReportArgs()}, __doc__)
    if command == "run":
        run(args)
    elif command == "profile":
        profile(args)
    elif command == "quality":
        quality(args)
    from distill_speed_report import report

    report(BenchmarkPaths.of(args.smoke))
    return 0


if __name__ == "__main__":
    sys.exit(main())
