"""Benchmark the reference methods (full data, Random) with the evaluation harness.

    python benchmarks/reference_methods.py run [datasets=ETTh1,ETTh2] [seeds=5] [workers=2]
    python benchmarks/reference_methods.py report   # regenerate the table from the records
    python benchmarks/reference_methods.py run smoke=true   # seconds: Random, DLinear, 1 seed

`run` writes one JSON record per (dataset, method, backbone), then the table. With
smoke=true everything goes under runs/smoke/ (`report smoke=true` reads it back).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from benchmark_jobs import (
    BenchmarkPaths,
    ReportArgs,
    command_line,
    distil_job,
    evaluate_job,
    load_records,
    plan,
    run_in_workers,
)

# Published MSE at 96 -> 96 (PROTOCOL.md), set beside ours in the table.
PUBLISHED = {
    "full": {
        "ETTh1": {"dlinear": 0.386, "itransformer": 0.389, "xpatch": 0.384},
        "ETTh2": {"dlinear": 0.326, "itransformer": 0.314, "xpatch": 0.296},
        "ETTm2": {"dlinear": 0.186, "itransformer": 0.185, "xpatch": 0.177},
    },
    "random": {
        "ETTh1": {"dlinear": 0.945, "itransformer": 0.757, "xpatch": 0.664},
        "ETTh2": {"dlinear": 1.860, "itransformer": 0.406, "xpatch": 0.359},
        "ETTm2": {"dlinear": 1.504, "itransformer": 0.256, "xpatch": 0.234},
    },
}


def results(paths: BenchmarkPaths):
    return paths.results / "reference"


def record_path(paths: BenchmarkPaths, cell: dict, backbone: str):
    return results(paths) / "records" / f"{cell['dataset']}__{cell['method']}__{backbone}.json"


@dataclass(frozen=True)
class RunArgs:
    datasets: tuple[str, ...] = ("ETTh1", "ETTh2", "ETTm1", "ETTm2")
    methods: tuple[str, ...] = ("full", "random")
    backbones: tuple[str, ...] = ("dlinear", "itransformer", "xpatch")
    length: int = 384
    seeds: int = 5
    workers: int = 2
    smoke: bool = False  # ETTh1, Random, DLinear, one seed, into runs/smoke/


def run(args: RunArgs) -> None:
    paths = BenchmarkPaths.of(args.smoke)
    if args.smoke:
        args = RunArgs(datasets=("ETTh1",), methods=("random",), backbones=("dlinear",),
                       seeds=1, workers=1, smoke=True)
    cells = [{"dataset": d, "method": m, "length": args.length,
              "set": str(paths.sets / f"{d}_{m}_M{args.length}_seed0")}
             for d in args.datasets for m in args.methods]
    distils, evals = plan(cells, list(args.backbones), args.seeds,
                          lambda cell, backbone: record_path(paths, cell, backbone))
    run_in_workers(distil_job, distils, args.workers)
    run_in_workers(evaluate_job, evals, args.workers)
    report(paths)


def report(paths: BenchmarkPaths) -> None:
    from hdt_finetune.atomic_files import atomic_write_text

    lines = [
        "# Reference methods: full data and Random (generated from records/, do not edit)",
        "",
        "MSE / MAE on the scaled test split, 96 -> 96, mean ± std over seeds; Random is one "
        "random real subsequence of M rows per channel (drawn with seed 0); each seed trains a "
        "fresh backbone with the fixed recipe (`hdt_finetune/evaluation/harness.py`). "
        "`published` is the paper's MSE (PROTOCOL.md); `Δ` is ours against it.",
        "",
        "| dataset | method | backbone | rows | seeds | MSE | MAE | published MSE | Δ | wall s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in load_records(results(paths) / "records"):
        ref = PUBLISHED.get(r["method"], {}).get(r["dataset"], {}).get(r["backbone"])
        delta = f"{100 * (r['mse_mean'] - ref) / ref:+.1f}%" if ref else ""
        lines.append(
            f"| {r['dataset']} | {r['method']} | {r['backbone']} | {r['length']} | "
            f"{len(r['seeds'])} | {r['mse_mean']:.4f} ± {r['mse_std']:.4f} | "
            f"{r['mae_mean']:.4f} ± {r['mae_std']:.4f} | {ref or ''} | {delta} | "
            f"{r['wall_s']:.0f} |"
        )
    atomic_write_text(results(paths) / "table.md", "\n".join(lines) + "\n")
    print(f"wrote {results(paths) / 'table.md'}")


def main(argv: list[str] | None = None) -> int:
    command, args = command_line(argv, {"run": RunArgs(), "report": ReportArgs()}, __doc__)
    run(args) if command == "run" else report(BenchmarkPaths.of(args.smoke))
    return 0


if __name__ == "__main__":
    sys.exit(main())
