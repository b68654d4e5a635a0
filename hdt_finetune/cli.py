"""The `hdt` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from hdt_finetune.corpus.corpus_distillation import CORPUS_METHODS
from hdt_finetune.data.data_cache import DatasetUnavailableError
from hdt_finetune.data.dataset_registry import DATASETS
from hdt_finetune.data.table_loading import RepairPolicy
from hdt_finetune.distill.matching_engine import DistillationDivergedError
from hdt_finetune.run_identity import CheckpointError

log = logging.getLogger("hdt_finetune")


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("input data")
    group.add_argument("--dataset", help=f"a known dataset ({', '.join(DATASETS)}) or the path "
                       "of a CSV / Parquet file or a saved Hugging Face dataset folder")
    group.add_argument("--date-column", default="date", help="name of the timestamp column")
    group.add_argument("--columns", help="comma-separated value columns (default: all others)")
    group.add_argument("--context-length", type=int, default=96)
    group.add_argument("--max-gap-fill", type=int, default=0, metavar="N",
                       help="interpolate runs of at most N NaN/infinite values (logged)")
    group.add_argument("--sort-timestamps", action="store_true",
                       help="sort unsorted rows by time instead of failing (logged)")
    group.add_argument("--drop-duplicate-timestamps", action="store_true",
                       help="keep the first row of a repeated timestamp instead of failing")
    group.add_argument("--drop-constant-columns", action="store_true",
                       help="drop columns constant over the train split instead of failing")


def _repair(args: argparse.Namespace) -> RepairPolicy:
    return RepairPolicy(
        max_gap_fill=args.max_gap_fill,
        sort_timestamps=args.sort_timestamps,
        drop_duplicate_timestamps=args.drop_duplicate_timestamps,
        drop_constant_columns=args.drop_constant_columns,
    )


def _columns(args: argparse.Namespace) -> list[str] | None:
    return [c.strip() for c in args.columns.split(",")] if args.columns else None


def build_parser() -> argparse.ArgumentParser:
    from hdt_finetune.backbones import BACKBONE_NAMES
    from hdt_finetune.methods import METHODS

    parser = argparse.ArgumentParser(
        prog="hdt", description="Distil time-series datasets and evaluate what they teach.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    distill = commands.add_parser("distill", help="make a synthetic training set",
                                  description="Make a synthetic training set and write it "
                                  "as a folder (HF dataset + manifest.json).")
    _add_data_options(distill)
    distill.add_argument("--method", required=True, choices=sorted(METHODS))
    distill.add_argument("--length", type=int, default=384, help="synthetic length M per channel")
    distill.add_argument("--seed", type=int, default=0)
    distill.add_argument("--out", type=Path, required=True, help="folder to write")
    distill.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    distill.add_argument("--set", dest="settings", action="append", default=[],
                         metavar="KEY=VALUE", help="a distillation setting, e.g. top_k=16 or "
                         "experts.n_experts=4 (repeatable; see hdt_finetune/distill/settings.py)")
    distill.add_argument("--quiet", action="store_true", help="no progress bars")

    evaluate = commands.add_parser(
        "evaluate", help="train fresh backbones on a training set, test on the real test split",
        description="Train freshly initialised backbones on a synthetic set or the full train "
        "split with the fixed recipe, and test them on every window of the real test split.")
    _add_data_options(evaluate)
    source = evaluate.add_mutually_exclusive_group(required=True)
    source.add_argument("--synthetic", type=Path, help="a folder written by `hdt distill`")
    source.add_argument("--full", action="store_true", help="train on the full train split")
    evaluate.add_argument("--backbone", default="dlinear",
                          help=f"comma-separated, from {', '.join(BACKBONE_NAMES)}")
    evaluate.add_argument("--seeds", type=int, default=5, help="number of seeds (0..N-1)")
    evaluate.add_argument("--horizon", type=int, default=96)
    evaluate.add_argument("--max-steps", type=int, default=None)
    evaluate.add_argument("--learning-rate", type=float, default=None)
    evaluate.add_argument("--no-early-stopping", dest="early_stopping", action="store_false",
                          help="train exactly --max-steps and keep the last weights instead "
                          "of selecting on the real validation split")
    evaluate.add_argument("--json", type=Path, help="write the results here")

    corpus = commands.add_parser(
        "distill-corpus", help="distil a corpus larger than memory (one or many processes)",
        description="Stream a corpus once and distil it. Many processes: `accelerate launch` "
                    "or, on CPUs, ACCELERATE_USE_CPU=true torchrun --nproc_per_node N -m "
                    "hdt_finetune.cli distill-corpus ...")
    corpus.add_argument("--corpus", required=True,
                        help="a folder of CSV/Parquet files, a saved Hugging Face dataset "
                             "(uni2ts/LOTSA layout), a folder of those, or hf://owner/name")
    corpus.add_argument("--method", default="hdt", choices=CORPUS_METHODS)
    corpus.add_argument("--length", type=int, default=384, help="synthetic length M")
    corpus.add_argument("--channels", type=int, default=8, help="synthetic series to make")
    corpus.add_argument("--seed", type=int, default=0)
    corpus.add_argument("--out", type=Path, required=True, help="folder to write")
    corpus.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    corpus.add_argument("--chunk-rows", type=int, default=100_000,
                        help="rows read at a time from each file")
    corpus.add_argument("--window-reservoir", type=int, default=65_536,
                        help="training windows sampled for the experts")
    corpus.add_argument("--pool-size", type=int, default=2_048,
                        help="real length-M subsequences sampled for harmonic selection")
    corpus.add_argument("--context-length", type=int, default=96)
    corpus.add_argument("--set", dest="settings", action="append", default=[],
                        metavar="KEY=VALUE", help="a distillation setting, as for `distill`")
    corpus.add_argument("--quiet", action="store_true", help="no progress bars")

    commands.add_parser("datasets", help="list the known datasets and where they are cached")
    return parser


def _run_distill(args: argparse.Namespace) -> None:
    from hdt_finetune.distill.settings import DistillSettings
    from hdt_finetune.distillation import DistillConfig, run_distillation
    from hdt_finetune.typed_overrides import apply_overrides

    if args.dataset is None:
        raise ValueError("--dataset is required")
    settings = apply_overrides(DistillSettings(context_length=args.context_length),
                               args.settings)
    out = run_distillation(DistillConfig(
        dataset=args.dataset, method=args.method, out=args.out, length=args.length,
        seed=args.seed, overwrite=args.overwrite, settings=settings, repair=_repair(args),
        date_column=args.date_column, columns=_columns(args), show_progress=not args.quiet))
    print(out)


def _run_distill_corpus(args: argparse.Namespace) -> None:
    from hdt_finetune.corpus import CorpusDistillConfig, distill_corpus
    from hdt_finetune.distill.settings import DistillSettings
    from hdt_finetune.typed_overrides import apply_overrides

    settings = apply_overrides(DistillSettings(context_length=args.context_length),
                               args.settings)
    out = distill_corpus(CorpusDistillConfig(
        corpus=args.corpus, out=args.out, method=args.method, length=args.length,
        channels=args.channels, seed=args.seed, chunk_rows=args.chunk_rows,
        window_reservoir=args.window_reservoir, pool_size=args.pool_size, settings=settings,
        overwrite=args.overwrite, show_progress=not args.quiet))
    print(out)


def _run_evaluate(args: argparse.Namespace) -> None:
    from hdt_finetune.evaluation.evaluate_command import EvaluateConfig, run_evaluation

    config = EvaluateConfig(
        dataset=args.dataset, synthetic=args.synthetic, full=args.full,
        backbones=tuple(b.strip() for b in args.backbone.split(",") if b.strip()),
        seeds=args.seeds, context_length=args.context_length, horizon=args.horizon,
        max_steps=args.max_steps, learning_rate=args.learning_rate,
        early_stopping=args.early_stopping, json_path=args.json,
        repair=_repair(args), date_column=args.date_column, columns=_columns(args))
    report = run_evaluation(config)
    for row in report["results"]:
        print(f"{row['backbone']:>12}  mse {row['mse_mean']:.4f} ± {row['mse_std']:.4f}   "
              f"mae {row['mae_mean']:.4f} ± {row['mae_std']:.4f}   {row['wall_s']:.1f}s")


def _run_datasets() -> None:
    from hdt_finetune.data.data_cache import data_dir

    cache = data_dir()
    print(f"data cache: {cache}  (set HDT_DATA_DIR to change it)")
    for spec in DATASETS.values():
        state = "cached" if (cache / spec.filename).exists() else "missing"
        print(f"{spec.name:>14}  {spec.freq:>6}  {spec.n_rows:>6} x {spec.n_columns:<4} {state}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="hdt: %(message)s")
    try:
        if args.command == "distill":
            _run_distill(args)
        elif args.command == "evaluate":
            _run_evaluate(args)
        elif args.command == "distill-corpus":
            _run_distill_corpus(args)
        else:
            _run_datasets()
    except (ValueError, FileExistsError, DatasetUnavailableError, CheckpointError,
            DistillationDivergedError) as err:
        # Bad input: say what and how to fix it, without a traceback from deep inside.
        print(f"hdt: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
