"""The `hdt` command line: distil, evaluate, fine-tune.

Every command takes its inputs and outputs as flags (--dataset, --out, ...) and its settings
as bare `key=value` tokens (or `--set key=value`), parsed by the one override parser
(`typed_overrides`) into the command's typed config: `hdt distill` and `distill-corpus` into
`DistillSettings`, `hdt evaluate` into the `TrainingRecipe`, `hdt finetune` into
`FinetuneConfig`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from hdt_finetune.corpus.corpus_distillation import CORPUS_METHODS
from hdt_finetune.data.data_cache import DatasetUnavailableError
from hdt_finetune.data.dataset_registry import DATASETS
from hdt_finetune.data.prepared_data import DataSpec
from hdt_finetune.data.table_loading import RepairPolicy
from hdt_finetune.distill.matching_engine import DistillationDivergedError
from hdt_finetune.process_group import leave
from hdt_finetune.run_identity import CheckpointError

log = logging.getLogger("hdt_finetune")

SETTINGS_HELP = {
    "distill": "distillation settings, e.g. top_k=16 experts.n_experts=4 "
               "(hdt_finetune/distill/settings.py)",
    "distill-corpus": "distillation settings, as for `distill`",
    "evaluate": "training-recipe settings, e.g. max_steps=500 learning_rate=1e-4 "
                "early_stopping=false (hdt_finetune/evaluation/harness.py)",
    "finetune": "fine-tuning settings, e.g. learning_rate=1e-3 model.init=random "
                "(hdt_finetune/finetune/finetune_config.py)",
}


def _add_data_options(parser: argparse.ArgumentParser, required: bool) -> None:
    group = parser.add_argument_group("input data")
    group.add_argument("--dataset", required=required,
                       help=f"a known dataset ({', '.join(DATASETS)}) or the path of a CSV / "
                       "Parquet file or a saved Hugging Face dataset folder")
    group.add_argument("--date-column", default="date", help="name of the timestamp column")
    group.add_argument("--columns", help="comma-separated value columns (default: all others)")
    group.add_argument("--max-gap-fill", type=int, default=0, metavar="N",
                       help="interpolate runs of at most N NaN/infinite values (logged)")
    group.add_argument("--sort-timestamps", action="store_true",
                       help="sort unsorted rows by time instead of failing (logged)")
    group.add_argument("--drop-duplicate-timestamps", action="store_true",
                       help="keep the first row of a repeated timestamp instead of failing")
    group.add_argument("--drop-constant-columns", action="store_true",
                       help="drop columns constant over the train split instead of failing")


def _data_spec(args: argparse.Namespace) -> DataSpec | None:
    if args.dataset is None:
        return None
    columns = tuple(c.strip() for c in args.columns.split(",")) if args.columns else None
    return DataSpec(args.dataset, args.date_column, columns, RepairPolicy(
        max_gap_fill=args.max_gap_fill, sort_timestamps=args.sort_timestamps,
        drop_duplicate_timestamps=args.drop_duplicate_timestamps,
        drop_constant_columns=args.drop_constant_columns))


def _add_settings(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("--set", dest="settings", action="append", default=[],
                        metavar="KEY=VALUE", help="the same as a bare KEY=VALUE token")
    parser.epilog = f"KEY=VALUE tokens: {SETTINGS_HELP[command]}."


def build_parser() -> argparse.ArgumentParser:
    from hdt_finetune.backbones import BACKBONE_NAMES
    from hdt_finetune.methods import METHODS

    parser = argparse.ArgumentParser(
        prog="hdt", description="Distil time-series datasets, evaluate what they teach, and "
        "fine-tune foundation models on them.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    distill = commands.add_parser("distill", help="make a training set from a dataset",
                                  description="Make a training set and write it as a folder "
                                  "(HF dataset + manifest.json).")
    _add_data_options(distill, required=True)
    distill.add_argument("--method", required=True, choices=sorted(METHODS))
    distill.add_argument("--length", type=int, default=384, help="synthetic length M per channel")
    distill.add_argument("--seed", type=int, default=0)
    distill.add_argument("--out", type=Path, required=True, help="folder to write")
    distill.add_argument("--overwrite", action="store_true",
                         help="replace an existing --out (only a set hdt wrote)")
    distill.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_settings(distill, "distill")

    evaluate = commands.add_parser(
        "evaluate", help="train fresh backbones on a training set, test on the real test split",
        description="Train freshly initialised backbones on a training set or the full train "
        "split with the fixed recipe, and test them on every window of the real test split. "
        "Without --dataset, a set is evaluated on the data its manifest names.")
    _add_data_options(evaluate, required=False)
    source = evaluate.add_mutually_exclusive_group(required=True)
    source.add_argument("--synthetic", type=Path, help="a folder written by `hdt distill`")
    source.add_argument("--full", action="store_true", help="train on the full train split")
    evaluate.add_argument("--backbone", default="dlinear",
                          help=f"comma-separated, from {', '.join(BACKBONE_NAMES)}")
    evaluate.add_argument("--seeds", type=int, default=5, help="number of seeds (0..N-1)")
    evaluate.add_argument("--json", type=Path, help="write the results here")
    evaluate.add_argument("--overwrite", action="store_true", help="replace an existing --json")
    _add_settings(evaluate, "evaluate")

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
    corpus.add_argument("--overwrite", action="store_true",
                        help="replace an existing --out (only a set hdt wrote)")
    corpus.add_argument("--chunk-rows", type=int, default=100_000,
                        help="rows read at a time from each file")
    corpus.add_argument("--window-reservoir", type=int, default=65_536,
                        help="training windows sampled for the experts")
    corpus.add_argument("--pool-size", type=int, default=2_048,
                        help="real length-M subsequences sampled for harmonic selection")
    corpus.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_settings(corpus, "distill-corpus")

    finetune = commands.add_parser(
        "finetune", help="fine-tune a foundation model on a training set (Accelerate)",
        description="Fine-tune Moirai or PatchTST with the Accelerate loop on a training set "
        "(a distilled folder, full data, a corpus, or distil:METHOD made on demand), then test "
        "it on the real test split. Many processes: accelerate launch -m hdt_finetune.cli "
        "finetune ...")
    finetune.add_argument("--config", help="a recipe config: a name under recipes/configs "
                          "(moirai/small_full_cpu) or the path of a YAML file")
    finetune.add_argument("--dataset", help="validation and test data (a name or a file)")
    finetune.add_argument("--train-data", help="full, a set folder, corpus:A,B,generated or "
                          "distill:METHOD[:M[:SEED]]")
    finetune.add_argument("--out", help="the run's folder")
    finetune.add_argument("--overwrite", action="store_true",
                          help="start afresh in --out, removing the run there (only files "
                          "hdt finetune wrote)")
    _add_settings(finetune, "finetune")

    commands.add_parser("datasets", help="list the known datasets and where they are cached")
    return parser


def parse(argv: list[str] | None) -> argparse.Namespace:
    """Flags by argparse; the remaining bare `key=value` tokens are settings."""
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    stray = [token for token in rest if token.startswith("-") or "=" not in token]
    if stray or (rest and args.command == "datasets"):
        parser.error(f"unrecognized arguments: {' '.join(stray or rest)}")
    args.settings = [*getattr(args, "settings", []), *rest]
    return args


def _run_distill(args: argparse.Namespace) -> None:
    from hdt_finetune.distill.settings import method_settings
    from hdt_finetune.distillation import DistillConfig, run_distillation

    out = run_distillation(DistillConfig(
        data=_data_spec(args), method=args.method, out=args.out, length=args.length,
        seed=args.seed, overwrite=args.overwrite,
        settings=method_settings(args.method, args.settings),
        show_progress=not args.quiet))
    print(out)


def _run_distill_corpus(args: argparse.Namespace) -> None:
    from hdt_finetune.corpus import CorpusDistillConfig, distill_corpus
    from hdt_finetune.distill.settings import method_settings

    out = distill_corpus(CorpusDistillConfig(
        corpus=args.corpus, out=args.out, method=args.method, length=args.length,
        channels=args.channels, seed=args.seed, chunk_rows=args.chunk_rows,
        window_reservoir=args.window_reservoir, pool_size=args.pool_size,
        settings=method_settings(args.method, args.settings),
        overwrite=args.overwrite, show_progress=not args.quiet))
    print(out)


def _run_evaluate(args: argparse.Namespace) -> None:
    from hdt_finetune.evaluation.evaluate_command import EvaluateConfig, run_evaluation
    from hdt_finetune.evaluation.harness import TrainingRecipe
    from hdt_finetune.typed_overrides import apply_overrides

    config = EvaluateConfig(
        data=_data_spec(args), synthetic=args.synthetic, full=args.full,
        backbones=tuple(b.strip() for b in args.backbone.split(",") if b.strip()),
        seeds=args.seeds, recipe=apply_overrides(TrainingRecipe(), args.settings),
        json_path=args.json, overwrite=args.overwrite)
    report = run_evaluation(config)
    for row in report["results"]:
        print(f"{row['backbone']:>12}  mse {row['mse_mean']:.4f} ± {row['mse_std']:.4f}   "
              f"mae {row['mae_mean']:.4f} ± {row['mae_std']:.4f}   {row['wall_s']:.1f}s")


def _run_finetune(args: argparse.Namespace) -> None:
    from hdt_finetune.finetune.finetune_command import finetune_from_overrides

    flags = [f"{key}={value}" for key, value in (
        ("dataset", args.dataset), ("train_data", args.train_data), ("out", args.out))
        if value is not None]
    if args.overwrite:
        flags.append("overwrite=true")
    finetune_from_overrides(args.config, [*flags, *args.settings])


def _run_datasets() -> None:
    from hdt_finetune.data.data_cache import data_dir

    cache = data_dir()
    print(f"data cache: {cache}  (set HDT_DATA_DIR to change it)")
    for spec in DATASETS.values():
        state = "cached" if (cache / spec.filename).exists() else "missing"
        print(f"{spec.name:>14}  {spec.freq:>6}  {spec.n_rows:>6} x {spec.n_columns:<4} {state}")


def user_errors() -> tuple[type[BaseException], ...]:
    """What bad input raises: answered with one line, not a traceback."""
    from hdt_finetune.finetune.finetune_loop import FinetuneDivergedError
    from hdt_finetune.finetune.model_source import ModelUnavailableError
    from hdt_finetune.finetune.run_folder import RunFolderError

    return (ValueError, FileExistsError, PermissionError, DatasetUnavailableError,
            CheckpointError, DistillationDivergedError, ModelUnavailableError,
            FinetuneDivergedError, RunFolderError)


def run_or_exit(function, *args):
    """`function(*args)` for a recipe: bad input ends the program with one line saying what to
    do (exit status 2), not a traceback."""
    try:
        result = function(*args)
    except user_errors() as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    leave()
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="hdt: %(message)s")
    runners = {"distill": _run_distill, "evaluate": _run_evaluate,
               "distill-corpus": _run_distill_corpus, "finetune": _run_finetune}
    try:
        if args.command in runners:
            runners[args.command](args)
        else:
            _run_datasets()
    except user_errors() as err:
        print(f"hdt: error: {err}", file=sys.stderr)
        return 2
    leave()
    return 0


if __name__ == "__main__":
    sys.exit(main())
