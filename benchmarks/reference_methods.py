"""Benchmark the reference methods (full data, Random) with the evaluation harness.

    python benchmarks/reference_methods.py run      # writes one JSON record per
                                                    # (dataset, method, backbone), then the table
    python benchmarks/reference_methods.py report   # regenerates the table from the records

Records that already exist are kept, so a killed run picks up where it stopped. Each worker
process uses one thread: on a small CPU two single-thread workers beat one two-thread worker.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
from dataclasses import asdict
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "reference"
SETS = Path(__file__).resolve().parent.parent / "runs" / "benchmark_sets"

# Published full-data MSE at 96 -> 96 (PROTOCOL.md), set beside ours in the table.
PUBLISHED_FULL = {
    "ETTh1": {"dlinear": 0.386, "itransformer": 0.389, "xpatch": 0.384},
    "ETTh2": {"dlinear": 0.326, "itransformer": 0.314, "xpatch": 0.296},
    "ETTm2": {"dlinear": 0.186, "itransformer": 0.185, "xpatch": 0.177},
}
PUBLISHED_RANDOM = {
    "ETTh1": {"dlinear": 0.945, "itransformer": 0.757, "xpatch": 0.664},
    "ETTh2": {"dlinear": 1.860, "itransformer": 0.406, "xpatch": 0.359},
    "ETTm2": {"dlinear": 1.504, "itransformer": 0.256, "xpatch": 0.234},
}


def record_path(dataset: str, method: str, backbone: str) -> Path:
    return RESULTS / "records" / f"{dataset}__{method}__{backbone}.json"


def _evaluate_one(job: dict) -> str:
    import torch

    from hdt_finetune.atomic_files import atomic_write_json
    from hdt_finetune.data import prepare_data
    from hdt_finetune.evaluation import TrainingRecipe, evaluate_backbone
    from hdt_finetune.provenance import git_commit, machine, package_versions, peak_rss_mb
    from hdt_finetune.synthetic import read_synthetic_set

    torch.set_num_threads(1)
    data = prepare_data(job["dataset"])
    synthetic = read_synthetic_set(job["set"])
    recipe = TrainingRecipe()
    result = evaluate_backbone(synthetic.values, data, job["backbone"],
                               list(range(job["seeds"])), recipe, show_progress=False)
    atomic_write_json(record_path(job["dataset"], job["method"], job["backbone"]), {
        "status": "ok",
        "dataset": job["dataset"],
        "method": job["method"],
        "backbone": job["backbone"],
        "length": synthetic.values.shape[0],
        "distill_seed": synthetic.manifest["seed"],
        "distill_cost": synthetic.manifest["cost"],
        "recipe": asdict(recipe),
        **result.to_dict(),
        "peak_rss_mb": peak_rss_mb(),
        "threads": 1,
        "versions": package_versions(),
        "git": git_commit(),
        "machine": machine(),
    })
    return f"{job['dataset']} {job['method']} {job['backbone']}: mse {result.mse_mean:.4f}"


def run(args: argparse.Namespace) -> None:
    from hdt_finetune.distillation import DistillConfig, run_distillation

    jobs = []
    for dataset in args.datasets.split(","):
        for method in args.methods.split(","):
            folder = SETS / f"{dataset}_{method}_M{args.length}_seed0"
            if not folder.exists():
                run_distillation(DistillConfig(dataset=dataset, method=method, out=folder,
                                               length=args.length, seed=0))
            for backbone in args.backbones.split(","):
                if not record_path(dataset, method, backbone).exists():
                    jobs.append({"dataset": dataset, "method": method, "backbone": backbone,
                                 "set": str(folder), "seeds": args.seeds})
    print(f"{len(jobs)} evaluations to run with {args.workers} worker(s)", flush=True)
    context = multiprocessing.get_context("spawn")
    with context.Pool(args.workers, maxtasksperchild=1) as pool:
        for line in pool.imap_unordered(_evaluate_one, jobs):
            print(line, flush=True)
    report()


def load_records() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((RESULTS / "records").glob("*.json"))]


def report() -> Path:
    from hdt_finetune.atomic_files import atomic_write_text

    records = load_records()
    published = {"full": PUBLISHED_FULL, "random": PUBLISHED_RANDOM}
    lines = [
        "# Reference methods: full data and Random (generated from records/, do not edit)",
        "",
        "MSE / MAE on the scaled test split, 96 -> 96, mean ± std over seeds; Random is one "
        "random real subsequence of M rows per channel (drawn with seed 0); each seed trains a "
        "fresh backbone with the fixed recipe (`hdt_finetune/evaluation/harness.py`). "
        "`published` is the paper's MSE (PROTOCOL.md); `Δ` is ours against it.",
        "",
        "| dataset | method | backbone | M | seeds | MSE | MAE | published MSE | Δ | wall s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        ref = published.get(r["method"], {}).get(r["dataset"], {}).get(r["backbone"])
        delta = f"{100 * (r['mse_mean'] - ref) / ref:+.1f}%" if ref else ""
        lines.append(
            f"| {r['dataset']} | {r['method']} | {r['backbone']} | {r['length']} | "
            f"{len(r['seeds'])} | {r['mse_mean']:.4f} ± {r['mse_std']:.4f} | "
            f"{r['mae_mean']:.4f} ± {r['mae_std']:.4f} | {ref if ref else ''} | {delta} | "
            f"{r['wall_s']:.0f} |"
        )
    out = RESULTS / "table.md"
    atomic_write_text(out, "\n".join(lines) + "\n")
    print(f"wrote {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run")
    run_parser.add_argument("--datasets", default="ETTh1,ETTh2,ETTm1,ETTm2")
    run_parser.add_argument("--methods", default="full,random")
    run_parser.add_argument("--backbones", default="dlinear,itransformer,xpatch")
    run_parser.add_argument("--length", type=int, default=384)
    run_parser.add_argument("--seeds", type=int, default=5)
    run_parser.add_argument("--workers", type=int, default=2)
    sub.add_parser("report")
    args = parser.parse_args(argv)
    if args.command == "run":
        run(args)
    else:
        report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
