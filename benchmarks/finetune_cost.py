"""The product's headline: what fine-tuning a foundation model on a distilled set costs and
what it gives up, against full data, a random subset and zero-shot.

    python benchmarks/finetune_cost.py run [--datasets ETTh1] [--size small] [--seeds 3]
                                           [--workers 1]
    python benchmarks/finetune_cost.py report

For each (dataset, model) the arms are: zero-shot, full-data fine-tune, HDT-distilled,
CondTSF-distilled and a Random subset of the same size (M = 384 rows per channel). Every arm
gets the same selection rule (RULE below): each learning rate of the grid is tried with seed
0, the one with the lowest validation MSE wins, and seeds 1.. rerun with it. Steps are chosen
by early stopping on the validation split; the test split is evaluated once per run, on every
window. Weights: Salesforce's published ones when the hub answers, else a stand-in Moirai
pretrained here on a corpus without the evaluated dataset (built once, cached).

One JSON record per run in results/finetune_cost/records/; the report, the plots and
results/finetune_cost_summary.json are generated from them (benchmarks/finetune_cost_report.py).
A killed benchmark resumes: finished records are kept, a run in progress resumes from its
last checkpoint.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmark_jobs import ROOT, SETS, distil_job, run_in_workers

RESULTS = ROOT / "results" / "finetune_cost"
RUNS = ROOT.parent / "runs" / "finetune_cost"
DISTILLED_ARMS = {"hdt": "hdt", "condtsf": "condtsf", "random": "random"}  # arm -> method
SET_LENGTH = 384


@dataclass(frozen=True)
class SelectionRule:
    """How every arm's hyper-parameters are chosen, on the validation split only."""

    learning_rates: tuple[float, ...] = (1e-4, 1e-3)
    evals_per_epoch: int = 4  # validation every quarter epoch...
    min_eval_every: int = 10  # ...but not more often than every 10 steps
    max_eval_every: int = 200  # ...nor less often than every 200
    patience: int = 3  # stop after 3 validations without improvement; keep the best
    max_epochs: int = 20
    # A compute cap for this CPU; it binds only the full-data arm (1848 steps an epoch on
    # ETTh1), so a full fine-tune that had not stopped by then would cost more: the reported
    # cost reduction is then a lower bound.
    max_steps: int = 2000
    val_stride: int = 8  # every 8th validation window for early stopping (all arms alike)
    batch_size: int = 32
    warmup_steps: int = 10

    def schedule(self, train_windows: int) -> dict[str, int]:
        steps_per_epoch = max(1, train_windows // self.batch_size)
        eval_every = min(self.max_eval_every,
                         max(self.min_eval_every, math.ceil(steps_per_epoch /
                                                            self.evals_per_epoch)))
        max_steps = min(self.max_steps, self.max_epochs * steps_per_epoch)
        return {"eval_every": eval_every, "max_steps": max_steps, "save_every": eval_every}


RULE = SelectionRule()


def record_path(dataset: str, model: str, arm: str, lr: float | None, seed: int) -> Path:
    lr_part = "none" if lr is None else f"{lr:g}"
    return RESULTS / "records" / f"{dataset}__{model}__{arm}__lr{lr_part}__seed{seed}.json"


def set_folder(dataset: str, arm: str) -> Path:
    return SETS / f"{dataset}_{DISTILLED_ARMS[arm]}_M{SET_LENGTH}_seed0"


# --- weights -------------------------------------------------------------------------------

def standin_base(size: str):
    """The stand-in's pretraining settings: our loop on a multi-dataset corpus."""
    from hdt_finetune.finetune.finetune_config import FinetuneConfig

    return FinetuneConfig(model="moirai", model_size=size, max_steps=1500, eval_every=250,
                          save_every=250, patience=100, learning_rate=1e-3, warmup_steps=50,
                          val_stride=8, test_stride=8, batch_size=32, seed=0,
                          out=RUNS / "standin-unused")


def resolve_weights(dataset: str, size: str, choice: str) -> str:
    """A hub id when the published weights can be had, else the stand-in folder."""
    from hdt_finetune.finetune.model_source import ModelUnavailableError
    from hdt_finetune.finetune.moirai_adapter import MoiraiSpec, load_moirai
    from hdt_finetune.finetune.standin_model import build_standin

    if choice in ("auto", "hub"):
        hub_id = MoiraiSpec(size=size, context_length=96, horizon=96).hub_id
        try:
            load_moirai(hub_id)
            return hub_id
        except ModelUnavailableError as err:
            if choice == "hub":
                raise
            print(f"published weights unavailable ({err}); using the stand-in", flush=True)
    return str(build_standin(dataset, standin_base(size)))


# --- one fine-tuning run -------------------------------------------------------------------

def finetune_job(job: dict) -> str:
    """Run one arm at one learning rate and seed; write its record (with its curves)."""
    import torch

    from hdt_finetune.atomic_files import atomic_write_json
    from hdt_finetune.finetune.finetune_config import FinetuneConfig
    from hdt_finetune.finetune.finetune_loop import run_finetune

    torch.set_num_threads(1)
    out = Path(job["out"])
    config = FinetuneConfig(**job["config"], out=out)
    record = run_finetune(config)
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()
               if line] if (out / "metrics.jsonl").exists() else []
    atomic_write_json(job["record"], {
        **record, "arm": job["arm"], "learning_rate": job["learning_rate"],
        "seed": job["seed"], "rule": job["rule"], "curve": metrics,
        "concurrent_runs": job["concurrent_runs"],
    })
    shutil.rmtree(out, ignore_errors=True)  # weights and checkpoints: only the record stays
    return (f"{job['dataset']} {job['arm']} lr={job['learning_rate']} seed={job['seed']}: "
            f"test mse {record['test']['mse']:.4f} in {record['steps']} steps")


def arm_job(dataset: str, model_size: str, weights: str, arm: str, lr: float | None,
            seed: int) -> dict:
    """The job of one run under the selection rule; `lr` None for the zero-shot arms."""
    from hdt_finetune.finetune.finetune_data import load_finetune_data

    model = f"moirai-{model_size}"
    common = {"model": "moirai", "model_size": model_size, "dataset": dataset,
              "batch_size": RULE.batch_size, "val_stride": RULE.val_stride, "test_stride": 1,
              "warmup_steps": RULE.warmup_steps, "patience": RULE.patience, "seed": seed}
    if weights == "random":
        common.update(model_init="random")
    else:
        common.update(model_source=weights)
    if lr is None:  # zero-shot: no training, the test evaluation only
        config = {**common, "max_steps": 0, "train_data": "full"}
    else:
        train_data = "full" if arm == "full" else str(set_folder(dataset, arm))
        windows = len(load_finetune_data(dataset, train_data, 96, 96, 1000, 1000).train)
        config = {**common, **RULE.schedule(windows), "train_data": train_data,
                  "learning_rate": lr}
    name = record_path(dataset, model, arm, lr, seed).stem
    return {"dataset": dataset, "method": arm, "arm": arm, "learning_rate": lr, "seed": seed,
            "config": config, "out": str(RUNS / name), "weights": weights,
            "record": str(record_path(dataset, model, arm, lr, seed)),
            "rule": {**RULE.__dict__, "learning_rates": list(RULE.learning_rates)}}


def chosen_learning_rate(dataset: str, model: str, arm: str) -> float | None:
    """The grid point with the lowest best-validation MSE at seed 0, once all have run."""
    scores = {}
    for lr in RULE.learning_rates:
        path = record_path(dataset, model, arm, lr, 0)
        if not path.exists():
            return None
        scores[lr] = json.loads(path.read_text())["best_val_mse"]
    return min(scores, key=scores.get)


# --- the plan ------------------------------------------------------------------------------

def run(datasets: list[str], size: str, seeds: int, weights_choice: str, workers: int) -> None:
    import torch

    torch.set_num_threads(1)  # the stand-in is pretrained here, like every run: one thread
    model = f"moirai-{size}"
    for dataset in datasets:
        distils = [{"dataset": dataset, "method": DISTILLED_ARMS[arm], "length": SET_LENGTH,
                    "set": str(set_folder(dataset, arm))}
                   for arm in DISTILLED_ARMS if not set_folder(dataset, arm).exists()]
        run_in_workers(distil_job, distils, 1)
        weights = resolve_weights(dataset, size, weights_choice)
        print(f"{dataset}: weights {weights}", flush=True)
        arms = ["full", *DISTILLED_ARMS]
        jobs = [arm_job(dataset, size, weights, "zeroshot", None, 0),
                arm_job(dataset, size, "random", "random_init", None, 0)]
        jobs += [arm_job(dataset, size, weights, arm, lr, 0)
                 for arm in arms for lr in RULE.learning_rates]
        run_in_workers(finetune_job, [{**j, "concurrent_runs": workers} for j in jobs
                                      if not Path(j["record"]).exists()], workers)
        jobs = [arm_job(dataset, size, weights, arm, chosen_learning_rate(dataset, model, arm),
                        seed)
                for arm in arms for seed in range(1, seeds)
                if chosen_learning_rate(dataset, model, arm) is not None]
        run_in_workers(finetune_job, [{**j, "concurrent_runs": workers} for j in jobs
                                      if not Path(j["record"]).exists()], workers)
    from finetune_cost_report import report

    report()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    runner = sub.add_parser("run")
    runner.add_argument("--datasets", default="ETTh1",
                        help="comma-separated; ETTh1 first, then ETTh2,ETTm1,ETTm2,exchange_rate")
    runner.add_argument("--size", default="small",
                        help="Moirai size: small here; base or large on a GPU")
    runner.add_argument("--seeds", type=int, default=3)
    runner.add_argument("--workers", type=int, default=1,
                        help="runs at a time, one thread each; more than one makes them "
                             "share the machine, which every record's wall time then includes")
    runner.add_argument("--weights", choices=("auto", "hub", "standin"), default="auto",
                        help="auto: the published weights if the hub answers, else the stand-in")
    sub.add_parser("report")
    args = parser.parse_args(argv)
    if args.command == "run":
        run(args.datasets.split(","), args.size, args.seeds, args.weights, args.workers)
    else:
        from finetune_cost_report import report

        report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
