"""Distilling generated corpora of growing size: time, peak memory, processes, quality.

    python benchmarks/corpus_scaling.py run [sizes=1e6,1e7,1e8] [two_processes=1e7]
    python benchmarks/corpus_scaling.py report
    python benchmarks/corpus_scaling.py run smoke=true   # a minute: 10^5 points, tiny settings

Corpora (written once to runs/corpora/, not committed) come from
`hdt_finetune.corpus.generated_corpus`: series of 100k points, ten to a Parquet file, with
mixed periodicities, trends and AR noise. Each size is distilled by `hdt distill-corpus` in
a fresh process (two under torchrun for the sizes in two_processes), so its peak RSS is
its own. Quality: DLinear trained on the HDT set and on a Random set from the same corpus
(a uniform sample of real subsequences), tested on windows of a held-back corpus from the
same generator, every window normalised by its context.

One JSON record per run in results/corpus_scaling/records/ (a killed benchmark keeps them;
an interrupted size starts over, because a resumed run's time is not that size's cost); the
report and results/scaling_summary.json (one row per run, plus the fitted log-log slope of time
against points) are generated from them. With smoke=true everything goes under runs/smoke/
(`report smoke=true` reads it back).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmark_jobs import (
    SMOKE_DISTILL,
    BenchmarkPaths,
    ReportArgs,
    command_line,
    set_is_current,
)


@dataclass(frozen=True)
class RunArgs:
    sizes: tuple[float, ...] = (1e6, 1e7, 1e8)
    two_processes: tuple[float, ...] = (1e7,)  # sizes also distilled by two processes
    smoke: bool = False  # 10^5 points, one and two processes, tiny settings, runs/smoke/


@dataclass(frozen=True)
class Scale:
    """Where the runs go and how big their fixed parts are (a smoke run's are tiny)."""

    paths: BenchmarkPaths
    distill_args: tuple[str, ...] = ("--length", "384", "--channels", "8", "--quiet")
    held_back_points: int = 1_000_000
    quality_steps: int = 1500

    @classmethod
    def of(cls, smoke: bool) -> Scale:
        if not smoke:
            return cls(BenchmarkPaths.of(False))
        return cls(BenchmarkPaths.of(True), distill_args=(
            "--length", "384", "--channels", "8", "--quiet", "--window-reservoir", "2048",
            "--pool-size", "128", *SMOKE_DISTILL), held_back_points=100_000, quality_steps=50)

    @property
    def results(self) -> Path:
        return self.paths.results / "corpus_scaling"


def corpus(scale: Scale, points: int, seed: int = 0) -> Path:
    from hdt_finetune.corpus.generated_corpus import write_generated_corpus

    folder = scale.paths.work / "corpora" / f"points_{points:.0e}_seed{seed}"
    if not folder.exists():
        print(f"generating {folder.name}", flush=True)
        write_generated_corpus(folder, points, seed=seed)
    return folder


def distil(scale: Scale, points: int, method: str, processes: int) -> Path:
    """Distil in fresh process(es); returns the set folder (reused if present)."""
    out = scale.paths.work / "corpus_sets" / f"{method}_points{points:.0e}_procs{processes}"
    if set_is_current(out):
        return out
    stale = out.parent / f".{out.name}.checkpoint"
    if stale.exists():  # a resumed run's time is not this size's cost: start over
        print(f"removing the checkpoint of an interrupted run: {stale}", flush=True)
        shutil.rmtree(stale)
    command = ["-m", "hdt_finetune.cli", "distill-corpus", "--corpus",
               str(corpus(scale, points)), "--method", method, "--out", str(out),
               *scale.distill_args, *(["--overwrite"] if out.exists() else [])]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if processes == 1:
        launch = [sys.executable]
    else:  # CPU processes joined by Accelerate (gloo); `accelerate launch` on GPUs
        env["ACCELERATE_USE_CPU"] = "true"
        launch = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                  f"--nproc_per_node={processes}"]
    subprocess.run(launch + command, env=env, check=True)
    return out


def quality(scale: Scale, folder: Path, seed: int = 0) -> dict:
    """DLinear trained on the set's windows, tested on held-back windows (context-normed)."""
    import numpy as np
    import torch

    from hdt_finetune.backbones import DLinear, DLinearConfig
    from hdt_finetune.corpus import open_corpus
    from hdt_finetune.corpus.streaming_pass import PassSettings, stream_corpus
    from hdt_finetune.distill.flat_params import normalise_windows, windows_of
    from hdt_finetune.synthetic import read_synthetic_set

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    values = torch.as_tensor(read_synthetic_set(folder).values)
    x, y = normalise_windows(*windows_of(values, 96, 96))
    x = x.permute(0, 2, 1).reshape(-1, 96, 1)
    y = y.permute(0, 2, 1).reshape(-1, 96, 1)
    held = stream_corpus(open_corpus(corpus(scale, scale.held_back_points, seed=1)),
                         PassSettings(96, 96, 384, 20_000, 1), seed=0, show_progress=False)
    test = torch.from_numpy(held.windows.filled.copy())[:, :, None]
    model = DLinear(DLinearConfig(96, 96, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(scale.quality_steps):
        index = torch.randint(0, x.shape[0], (64,), generator=generator)
        loss = torch.nn.functional.mse_loss(model(x[index]), y[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        error = model(test[:, :96]) - test[:, 96:]
    return {"test_mse": float(error.pow(2).mean()), "test_mae": float(error.abs().mean()),
            "test_windows": int(test.shape[0]), "train_windows": int(x.shape[0]),
            "steps": scale.quality_steps, "seed": seed, "mse_naive_last_value": float(
                np.mean((test[:, 95:96] - test[:, 96:]).numpy() ** 2))}


def record(scale: Scale, points: int, processes: int) -> None:
    from hdt_finetune.atomic_files import atomic_write_json
    from hdt_finetune.provenance import git_commit, machine, package_versions

    path = scale.results / "records" / f"points{points:.0e}_procs{processes}.json"
    if path.exists():
        return
    hdt = distil(scale, points, "hdt", processes)
    manifest = json.loads((hdt / "manifest.json").read_text())
    random_set = distil(scale, points, "random", 1)
    atomic_write_json(path, {
        "points": points, "processes": processes,
        "corpus": manifest["source"]["counts"], "cost": manifest["cost"],
        "quality": {"hdt": quality(scale, hdt), "random": quality(scale, random_set)},
        "sets_sha256": {"hdt": manifest["content_sha256"], "random": json.loads(
            (random_set / "manifest.json").read_text())["content_sha256"]},
        "settings": manifest["settings"], "load_average": os.getloadavg(),
        "versions": package_versions(), "git": git_commit(), "machine": machine(),
    })
    print(f"{points:.0e} points, {processes} process(es): {manifest['cost']['wall_s']:.0f} s, "
          f"peak RSS {manifest['cost']['peak_rss_mb']:.0f} MB", flush=True)


def report(scale: Scale) -> None:
    import numpy as np

    from hdt_finetune.atomic_files import atomic_write_json, atomic_write_text

    results, summary = scale.results, scale.paths.results / "scaling_summary.json"
    records = sorted((json.loads(p.read_text()) for p in (results / "records").glob("*.json")),
                     key=lambda r: (r["processes"], r["points"]))
    rows = [{"points": r["points"], "wall_s": r["cost"]["wall_s"],
             "peak_rss_mb": r["cost"]["peak_rss_mb"], "processes": r["processes"],
             "points_per_s_per_process": [p["points_per_s"] for p in r["cost"]["per_process"]],
             "pass_s_per_process": [p["pass_s"] for p in r["cost"]["per_process"]],
             "experts_s": max(p["experts_s"] for p in r["cost"]["per_process"]),
             "matching_s": max(p["loop_s"] for p in r["cost"]["per_process"]),
             "mse_hdt": r["quality"]["hdt"]["test_mse"],
             "mse_random": r["quality"]["random"]["test_mse"]} for r in records]
    single = [r for r in rows if r["processes"] == 1]
    def fitted_slope(seconds: str) -> float | None:
        if len(single) < 2:
            return None
        times = [r[seconds] if seconds == "wall_s" else r[seconds][0] for r in single]
        return float(np.polyfit(np.log([r["points"] for r in single]), np.log(times), 1)[0])

    # The whole run, and its streaming pass alone: at these sizes the experts and the
    # matching loop (constant in corpus size) dominate the wall time.
    slope, pass_slope = fitted_slope("wall_s"), fitted_slope("pass_s_per_process")
    rss = [r["peak_rss_mb"] for r in single]
    lines = ["# Corpus scaling (generated from records/, do not edit)", "",
             "`hdt distill-corpus --method hdt --length 384 --channels 8`, default settings, "
             "one thread per process, on generated corpora. Test MSE: DLinear trained on the "
             "set, tested on a held-back generated corpus, windows normalised by context.", "",
             "| points | processes | wall s | pass s (per process) | points/s per process "
             "| peak RSS MB | MSE HDT | MSE Random |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['points']:.0e} | {r['processes']} | {r['wall_s']:.0f} | "
            f"{' / '.join(f'{s:.0f}' for s in r['pass_s_per_process'])} | "
            f"{' / '.join(f'{s:,.0f}' for s in r['points_per_s_per_process'])} | "
            f"{r['peak_rss_mb']:.0f} | {r['mse_hdt']:.4f} | {r['mse_random']:.4f} |")
    lines += ["", f"Fitted log-log slope of wall time against points (one process): "
              f"{'n/a' if slope is None else f'{slope:.3f}'} (target <= 1.1); of the "
              f"streaming pass alone: {'n/a' if pass_slope is None else f'{pass_slope:.3f}'}.",
              f"Peak RSS, one process: {min(rss, default=0):.0f} to {max(rss, default=0):.0f} "
              f"MB ({(max(rss) / min(rss) - 1) * 100 if rss else 0:.1f}% spread; target "
              "<= 20%).", ""]
    for many in (r for r in rows if r["processes"] > 1):
        one = next((r for r in single if r["points"] == many["points"]), None)
        if one:
            lines.append(
                f"{many['processes']} processes against one at {many['points']:.0e} points: "
                f"{many['wall_s']:.0f} s against {one['wall_s']:.0f} s (speed-up "
                f"{one['wall_s'] / many['wall_s']:.2f}x); experts {many['experts_s']:.0f} s "
                f"against {one['experts_s']:.0f} s, matching {many['matching_s']:.0f} s "
                f"against {one['matching_s']:.0f} s; MSE HDT {many['mse_hdt']:.4f} against "
                f"{one['mse_hdt']:.4f} (target: not slower).")
    lines.append("")
    for r in records:
        lines.append(f"- {r['points']:.0e} points, {r['processes']} process(es): load "
                     f"average at the end {', '.join(f'{v:.1f}' for v in r['load_average'])}")
    results.mkdir(parents=True, exist_ok=True)
    atomic_write_text(results / "report.md", "\n".join(lines) + "\n")
    atomic_write_json(summary, {"rows": rows, "slope_log_time_vs_log_points": slope,
                                "slope_log_pass_time_vs_log_points": pass_slope})
    print(f"wrote {results / 'report.md'} and {summary}")


def main(argv: list[str] | None = None) -> int:
    command, args = command_line(argv, {"run": RunArgs(), "report": ReportArgs()}, __doc__)
    scale = Scale.of(args.smoke)
    if command == "run":
        if args.smoke:
            args = RunArgs(sizes=(1e5,), two_processes=(1e5,), smoke=True)
        for size in args.sizes:
            record(scale, int(size), 1)
        for size in args.two_processes:
            record(scale, int(size), 2)
    report(scale)
    return 0


if __name__ == "__main__":
    sys.exit(main())
