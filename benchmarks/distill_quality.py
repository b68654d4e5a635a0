"""The published distillation table rerun by us, plus the sweep over synthetic length M.

    python benchmarks/distill_quality.py run [datasets=ETTh1] [methods=hdt,random] [seeds=5]
    python benchmarks/distill_quality.py sweep [lengths=192,384] [methods=hdt,condtsf,random]
    python benchmarks/distill_quality.py report  # regenerate report, summary and plot
    python benchmarks/distill_quality.py run smoke=true   # a minute: tiny settings, DLinear

`run` distils, evaluates, then writes the report; `sweep` measures MSE against M on ETTh1.
With smoke=true (ETTh1, Random and HDT at seconds-long settings, DLinear, one seed)
everything goes under runs/smoke/; `report smoke=true` reads it back.

One JSON record per (dataset, method, M, backbone) in results/distill_quality/records/.
Generated from them: results/distill_quality/report.md, results/distill_quality_summary.json
and results/distill_quality/mse_vs_length.png.
"""

from __future__ import annotations

import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass

from benchmark_jobs import (
    SMOKE_DISTILL,
    BenchmarkPaths,
    ReportArgs,
    command_line,
    distil_job,
    evaluate_job,
    load_records,
    plan,
    run_in_workers,
)

BACKBONES = ("dlinear", "itransformer", "xpatch")
METHODS = ("random", "base", "mtt", "condtsf", "hdt_freq", "hdt_harm", "hdt")

# PROTOCOL.md: published MSE at M = 384, DLinear / iTransformer / xPatch.
PUBLISHED = {
    "random": {"ETTh1": (0.945, 0.757, 0.664), "ETTh2": (1.860, 0.406, 0.359),
               "ETTm2": (1.504, 0.256, 0.234)},
    "mtt": {"ETTh1": (0.521, 0.640, 0.587), "ETTh2": (0.661, 0.387, 0.346),
            "ETTm2": (0.702, 0.257, 0.248)},
    "condtsf": {"ETTh1": (0.510, 0.494, 0.492), "ETTh2": (0.392, 0.336, 0.325),
                "ETTm2": (0.223, 0.209, 0.204)},
    "hdt": {"ETTh1": (0.430, 0.421, 0.409), "ETTh2": (0.359, 0.331, 0.311),
            "ETTm2": (0.211, 0.205, 0.201)},
}
# Cross-architecture means from the paper's ablation table.
PUBLISHED_MEAN = {
    "hdt": {"ETTh1": 0.420, "ETTh2": 0.334, "ETTm1": 0.386, "ETTm2": 0.206},
    "base": {"ETTh1": 0.583, "ETTh2": 0.465, "ETTm1": 0.905, "ETTm2": 0.402},
}


def results(paths: BenchmarkPaths):
    return paths.results / "distill_quality"


def record_path(paths: BenchmarkPaths, cell: dict, backbone: str):
    name = f"{cell['dataset']}__{cell['method']}__M{cell['length']}__{backbone}.json"
    return results(paths) / "records" / name


def cells(paths: BenchmarkPaths, datasets: list[str], methods: list[str], lengths: list[int],
          settings: tuple[str, ...] = ()) -> list[dict]:
    return [{"dataset": d, "method": m, "length": n, "settings": list(settings),
             "set": str(paths.sets / f"{d}_{m}_M{n}_seed0")}
            for d in datasets for m in methods for n in lengths]


@dataclass(frozen=True)
class RunArgs:
    datasets: tuple[str, ...] = ("ETTh1", "ETTh2", "ETTm1", "ETTm2", "exchange_rate")
    methods: tuple[str, ...] = METHODS
    backbones: tuple[str, ...] = BACKBONES
    seeds: int = 5
    workers: int = 2
    smoke: bool = False  # ETTh1, Random and HDT at tiny settings, DLinear, into runs/smoke/


@dataclass(frozen=True)
class SweepArgs:
    lengths: tuple[int, ...] = (192, 384, 768, 1536)
    methods: tuple[str, ...] = ("hdt", "condtsf", "random")
    backbones: tuple[str, ...] = BACKBONES
    seeds: int = 5
    workers: int = 2


def execute(paths: BenchmarkPaths, planned: list[dict], args: RunArgs | SweepArgs) -> None:
    distils, evals = plan(planned, list(args.backbones), args.seeds,
                          lambda cell, backbone: record_path(paths, cell, backbone))
    run_in_workers(distil_job, distils, args.workers)
    run_in_workers(evaluate_job, evals, args.workers)
    report(paths)


def report(paths: BenchmarkPaths) -> None:
    from hdt_finetune.atomic_files import atomic_write_json, atomic_write_text

    out, summary_path = results(paths), paths.results / "distill_quality_summary.json"
    records = load_records(out / "records")
    table = defaultdict(dict)  # (dataset, method, length) -> backbone -> record
    for r in records:
        table[(r["dataset"], r["method"], r["length"])][r["backbone"]] = r
    summary: dict = defaultdict(dict)
    lines = [
        "# Distillation quality (generated from records/, do not edit)",
        "",
        "Test MSE (scaled, 96 -> 96) of fresh backbones trained on each synthetic set, mean ± "
        "std over seeds; sets distilled once with seed 0. `paper` is the published MSE "
        "(PROTOCOL.md), never ours. `mean` is the cross-architecture mean.",
        "",
        "| dataset | method | M | DLinear | iTransformer | xPatch | mean | paper D/iT/xP | "
        "paper mean | distil s | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (dataset, method, length), by_backbone in sorted(table.items()):
        cells_ = [by_backbone.get(b) for b in BACKBONES]
        text = [f"{r['mse_mean']:.4f} ± {r['mse_std']:.4f}" if r else "" for r in cells_]
        done = [r["mse_mean"] for r in cells_ if r]
        mean = statistics.fmean(done) if len(done) == len(BACKBONES) else None
        paper = PUBLISHED.get(method, {}).get(dataset) if length == 384 else None
        paper_mean = PUBLISHED_MEAN.get(method, {}).get(dataset) if length == 384 else None
        if paper and paper_mean is None:
            paper_mean = statistics.fmean(paper)
        any_record = next(r for r in cells_ if r)
        cost = any_record["distill_cost"]
        lines.append(
            f"| {dataset} | {method} | {length} | {' | '.join(text)} | "
            f"{'' if mean is None else f'{mean:.4f}'} | "
            f"{'/'.join(f'{p:.3f}' for p in paper) if paper else ''} | "
            f"{'' if paper_mean is None else f'{paper_mean:.3f}'} | "
            f"{cost['wall_s']:.0f} | {cost.get('peak_rss_mb') or 0:.0f} |"
        )
        if length == 384 and mean is not None:
            summary[dataset][method] = {
                "mse_mean_cross_arch": mean,
                "mse_by_backbone": {b: r["mse_mean"] for b, r in zip(BACKBONES, cells_,
                                                                     strict=True)},
                "distill_wall_s": cost["wall_s"],
                "peak_rss_mb": cost.get("peak_rss_mb"),
            }
    out.mkdir(parents=True, exist_ok=True)
    plot = _plot_sweep(table, out / "mse_vs_length.png")
    if plot:
        lines += ["", f"![MSE against synthetic length]({plot.name})"]
    atomic_write_text(out / "report.md", "\n".join(lines) + "\n")
    atomic_write_json(summary_path, summary)
    print(f"wrote {out / 'report.md'} and {summary_path}")


def _plot_sweep(table: dict, path):
    """Cross-architecture mean MSE against M for each method with more than one length."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = defaultdict(list)
    for (dataset, method, length), by_backbone in table.items():
        if dataset == "ETTh1" and len(by_backbone) == len(BACKBONES):
            series[method].append((length, statistics.fmean(
                r["mse_mean"] for r in by_backbone.values())))
    series = {m: sorted(p) for m, p in series.items() if len(p) > 1}
    if not series:
        return None
    figure, axis = plt.subplots(figsize=(6, 4))
    for method, points in sorted(series.items()):
        axis.plot(*zip(*points, strict=True), marker="o", label=method)
    axis.set_xscale("log", base=2)
    axis.set_xlabel("synthetic length M (rows per channel)")
    axis.set_ylabel("test MSE, mean of DLinear/iTransformer/xPatch")
    axis.set_title("ETTh1 96 -> 96")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def main(argv: list[str] | None = None) -> int:
    command, args = command_line(argv, {"run": RunArgs(), "sweep": SweepArgs(),
                                        "report": ReportArgs()}, __doc__)
    paths = BenchmarkPaths.of(getattr(args, "smoke", False))
    if command == "run" and args.smoke:
        args = RunArgs(datasets=("ETTh1",), methods=("random", "hdt"), backbones=("dlinear",),
                       seeds=1, workers=1, smoke=True)
        execute(paths, cells(paths, ["ETTh1"], list(args.methods), [384], SMOKE_DISTILL), args)
    elif command == "run":
        execute(paths, cells(paths, list(args.datasets), list(args.methods), [384]), args)
    elif command == "sweep":
        execute(paths, cells(paths, ["ETTh1"], list(args.methods), list(args.lengths)), args)
    else:
        report(paths)
    return 0


if __name__ == "__main__":
    sys.exit(main())
