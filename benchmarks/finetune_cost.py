"""The product's headline: what fine-tuning a foundation model on a distilled set costs and
what it gives up, against full data, a random subset and zero-shot.

    python benchmarks/finetune_cost.py run [datasets=ETTh1] [size=small] [seeds=3] [workers=1]
    python benchmarks/finetune_cost.py report
    python benchmarks/finetune_cost.py standin [datasets=ETTh1]  # only pretrain the stand-in
    python benchmarks/finetune_cost.py run smoke=true   # minutes: tiny Moirai, tiny sets

With smoke=true (ETTh1, a random-init tiny Moirai, sets distilled at seconds-long settings,
a few steps, SMOKE_RULE) everything goes under runs/smoke/; `report smoke=true` reads it.

For each (dataset, model) the arms (ARMS, in finetune_cost_arms.py, which the report reads
too) are: zero-shot, full-data fine-tune, HDT-distilled, CondTSF-distilled and a Random
subset of the same size (M = 384 rows per channel; two training seeds, the others `seeds`),
and full data trained for the HDT and CondTSF arms' budgets. Every arm gets the same
selection rule (BENCHMARK_RULE, beside them; its learning-rate grid is the screen's verdict
on lever 4): each learning rate of the grid is tried with seed 0, the one with the lowest
validation MSE wins, and seeds 1.. rerun with it. Every arm validates at
the same optimizer steps (the starting weights, 10, 20, ..., 320, then every 200) on the
same subset, with the same patience and step cap, so the number of steps is chosen by one
rule; the test subset probed at each validation feeds the curves and time to accuracy only,
and the selected model is tested once, on every window. Records made under the older rule
(which validated by epochs) say so in their "rule" field and must be rerun, not mixed in.
Weights: Salesforce's published ones when the hub answers, else a stand-in Moirai pretrained
here on a corpus without the evaluated dataset's family (built once, cached).

One JSON record per run in results/finetune_cost/records/; the report, the plots and
results/finetune_cost_summary.json are generated from them (benchmarks/finetune_cost_report.py).
A killed benchmark resumes: finished records are kept, a run in progress resumes from its
last checkpoint.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from benchmark_jobs import (
    BenchmarkPaths,
    ReportArgs,
    command_line,
    distil_job,
    run_in_workers,
)
from finetune_cost_arms import (
    BENCHMARK_RULE,
    LABELS,
    MATCHED_ARMS,
    SET_ARMS,
    SMOKE_RULE,
    TRAINED_ARMS,
    SelectionRule,
    arm_seeds,
)
from set_recipes import Candidate, distil_jobs, folder_sha256


@dataclass(frozen=True)
class RunArgs:
    datasets: tuple[str, ...] = ("ETTh1",)  # ETTh1 first, then ETTh2,ETTm1,ETTm2,exchange_rate
    size: str = "small"  # Moirai size: small here; base or large on a GPU
    seeds: int = 3
    # Runs at a time, one thread each; more than one makes them share the machine, which
    # every record's wall time then includes.
    workers: int = 1
    # auto: the published weights if the hub answers, else the stand-in; random: a random
    # init (the smoke run's)
    weights: Literal["auto", "hub", "standin", "random"] = "auto"
    # Only these arms (ARMS names; empty: all), e.g. arms=zeroshot,random_init for the
    # weights' zero-shot MSE alone. A matched arm runs once its set arm's seeds have.
    arms: tuple[str, ...] = ()
    smoke: bool = False


def record_path(paths: BenchmarkPaths, dataset: str, model: str, arm: str, lr: float | None,
                seed: int) -> Path:
    lr_part = "none" if lr is None else f"{lr:g}"
    return (paths.results / "finetune_cost" / "records"
            / f"{dataset}__{model}__{arm}__lr{lr_part}__seed{seed}.json")


def set_folders(paths: BenchmarkPaths, dataset: str, arm: str, weights: str) -> list[Path]:
    """A set arm's member sets (the reference arms keep their `{dataset}_{method}_M384_seed0`
    folders); a set distilled for the model is named by the weights it was made for."""
    return [recipe.folder(paths, dataset, weights) for recipe in SET_ARMS[arm]]


def current_sets(paths: BenchmarkPaths, dataset: str, arm: str, weights: str
                 ) -> list[str] | None:
    """A set arm's member sets' checksums as they are now (None for the other arms)."""
    from hdt_finetune.synthetic import read_synthetic_set

    if arm not in SET_ARMS:
        return None
    return [read_synthetic_set(f).content_sha256
            for f in set_folders(paths, dataset, arm, weights)]


# --- weights -------------------------------------------------------------------------------

STANDIN_STEPS = 10_000


def standin_base(size: str, paths: BenchmarkPaths, steps: int = STANDIN_STEPS):
    """The stand-in's pretraining settings: our loop on a multi-dataset corpus, about an
    hour of one CPU thread for Moirai-small (10,000 steps of 32 windows, a cosine schedule;
    the checkpoint with the best held-back validation MSE is kept)."""
    from hdt_finetune.finetune.finetune_config import FinetuneConfig

    return FinetuneConfig.from_overrides([
        "model.family=moirai", f"model.size={size}", f"max_steps={steps}", "eval_every=500",
        "save_every=500", "patience=100", "learning_rate=1e-3", "warmup_steps=200",
        "val_stride=8", "test_stride=8", "batch_size=32", "seed=0",
        f"out={paths.work / 'finetune_cost' / 'standin-unused'}"])


def resolve_weights(dataset: str, size: str, choice: str, paths: BenchmarkPaths,
                    standin_steps: int = STANDIN_STEPS) -> str:
    """A hub id when the published weights can be had, else the stand-in folder ("random"
    when asked for a random init)."""
    from hdt_finetune.atomic_files import atomic_write_json
    from hdt_finetune.finetune.model_source import ModelUnavailableError
    from hdt_finetune.finetune.moirai.moirai_weights import MoiraiSpec, load_moirai
    from hdt_finetune.finetune.standin_model import STANDIN_FILE, build_standin

    if choice == "random":
        return "random"
    if choice in ("auto", "hub"):
        hub_id = MoiraiSpec(size=size, context_length=96, horizon=96).hub_id
        try:
            load_moirai(hub_id)
            return hub_id
        except ModelUnavailableError as err:
            if choice == "hub":
                raise
            print(f"published weights unavailable ({err}); using the stand-in", flush=True)
    folder = build_standin(dataset, standin_base(size, paths, standin_steps))
    # Its pretraining record (corpus checksums, curve, cost) is kept with the results under
    # the folder's checksum, the one every record made with it carries (weights_sha256). A
    # stand-in pretrained again (a new machine: its BLAS and kernels round otherwise, so the
    # generated corpus and the weights get other bits) gets a record of its own, and the
    # records made with the old one keep theirs; they stop counting for a run (their
    # weights checksum differs) and are run again, never mixed in.
    kept = standin_record_path(paths, folder)
    if not kept.exists():
        made = json.loads((folder / STANDIN_FILE).read_text())
        for other in sorted(kept.parent.glob(f"{folder.name}__*.json")):
            before = json.loads(other.read_text())
            print(f"the stand-in {folder.name} was pretrained again (model files sha256 "
                  f"{str(before.get('model_files_sha256'))[:12]} -> "
                  f"{str(made.get('model_files_sha256'))[:12]}; best validation MSE "
                  f"{before['validation']['mse']:.6f} -> {made['validation']['mse']:.6f}): "
                  f"records made with {other.name} are run again", flush=True)
        kept.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(kept, made)
    return str(folder)


def standin_record_path(paths: BenchmarkPaths, folder: Path) -> Path:
    """Where a stand-in's pretraining record is kept: named by the folder and ten digits of
    its checksum, as the records made with it name it (weights_sha256)."""
    return (paths.results / "finetune_cost" / "standins"
            / f"{folder.name}__{folder_sha256(str(folder.resolve()))[:10]}.json")


@dataclass(frozen=True)
class StandinArgs:
    datasets: tuple[str, ...] = ("ETTh1",)  # one stand-in per family serves both members
    size: str = "small"


def standins(args: StandinArgs) -> None:
    """Pretrain (or find) the stand-in of each dataset, one thread, and keep its record."""
    import torch

    torch.set_num_threads(1)
    for dataset in args.datasets:
        folder = resolve_weights(dataset, args.size, "standin", BenchmarkPaths.of(False))
        print(f"{dataset}: stand-in {folder}", flush=True)


# --- one fine-tuning run -------------------------------------------------------------------

def finetune_job(job: dict) -> str:
    """Run one arm at one learning rate and seed; write its record (with its curves)."""
    import torch

    from hdt_finetune.atomic_files import atomic_write_json
    from hdt_finetune.finetune.finetune_config import FinetuneConfig
    from hdt_finetune.finetune.finetune_loop import run_finetune

    torch.set_num_threads(1)
    out = Path(job["out"])
    config = FinetuneConfig.from_overrides([f"out={out}"], job["config"])
    record = run_finetune(config)
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()
               if line] if (out / "metrics.jsonl").exists() else []
    distill_flops = 0.0
    if job["config"].get("train_data", "full") != "full":  # what made the set(s), counted
        from hdt_finetune.distill.distill_flops import set_flops  # like their wall time
        from hdt_finetune.synthetic import read_synthetic_set

        distill_flops = sum(set_flops(read_synthetic_set(member).manifest).total
                            for member in job["config"]["train_data"].split("+"))
    atomic_write_json(job["record"], {
        **record, "distill_flops": distill_flops, "arm": job["arm"],
        "learning_rate": job["learning_rate"],
        "seed": job["seed"], "rule": job["rule"], "budget": job["budget"], "curve": metrics,
        "concurrent_runs": job["concurrent_runs"], **job.get("record_extra", {}),
    })
    shutil.rmtree(out, ignore_errors=True)  # weights and checkpoints: only the record stays
    result = (f"best val mse {record['best_val_mse']:.4f}" if record["test"] is None
              else f"test mse {record['test']['mse']:.4f}")
    return (f"{job['dataset']} {job['arm']} lr={job['learning_rate']} seed={job['seed']}: "
            f"{result} in {record['steps']} steps")


def arm_job(paths: BenchmarkPaths, rule: SelectionRule, dataset: str, model_size: str,
            weights: str, arm: str, lr: float | None, seed: int,
            budget: dict | None = None, train_data: str | None = None,
            record: Path | None = None) -> dict:
    """The job of one run under the selection rule; `lr` None for the zero-shot arms; a
    compute-matched arm trains full data for `budget["steps"]` at most (which may exceed
    the rule's step cap: the set arm's steps plus its distillation are the budget). Another
    benchmark (the screen) names its own `train_data` and `record`."""
    from hdt_finetune.run_identity import fingerprint

    model = f"moirai-{model_size}"
    common = {"model.family": "moirai", "model.size": model_size, "dataset": dataset,
              "batch_size": rule.batch_size, "val_stride": rule.val_stride,
              "test_stride": rule.test_stride, "warmup_steps": rule.warmup_steps,
              "patience": rule.patience, "seed": seed}
    if weights == "random":
        common.update({"model.init": "random"})
    else:
        common.update({"model.source": weights})
    if lr is None:  # zero-shot: no training, the test evaluation only
        config = {**common, "max_steps": 0, "train_data": "full"}
    else:
        if train_data is None:
            train_data = ("+".join(str(f) for f in set_folders(paths, dataset, arm, weights))
                          if arm in SET_ARMS else "full")
        config = {**common, **rule.schedule(), "train_data": train_data, "learning_rate": lr}
        if budget is not None:
            config["max_steps"] = budget["steps"]
    record = record or record_path(paths, dataset, model, arm, lr, seed)
    return {"dataset": dataset, "method": arm, "arm": arm, "learning_rate": lr, "seed": seed,
            "sets_sha256": current_sets(paths, dataset, arm, weights),
            # A folder per configuration: a run of an older rule or budget left behind by a
            # kill is never claimed by this one (its own leftovers resume).
            "config": config, "out": str(paths.work / "finetune_cost" / (
                f"{record.stem}-{fingerprint({'config': config, 'budget': budget}, 12)}")),
            "weights": weights, "record": str(record), "budget": budget,
            "rule": rule.record()}


def same_weights(recorded: str | None, asked: str, recorded_sha256: str | None = None
                 ) -> bool:
    """Whether a record's weights are the ones a job asks for: "random" is recorded as
    "random-init", a hub id as itself, a folder by its resolved path and its contents'
    checksum (a stand-in rebuilt on another machine has the same path and other bits; a
    record without the checksum predates it and counts as made with other weights)."""
    if asked == "random":
        return recorded == "random-init"
    if recorded is None:
        return False
    if Path(asked).is_dir():
        return (Path(recorded).resolve() == Path(asked).resolve()
                and recorded_sha256 == folder_sha256(str(Path(asked).resolve())))
    return recorded == asked


def trained_sets_sha256(record: dict) -> list[str]:
    """The checksums of the sets a record trained on ([] for the full split)."""
    trained = record["train_data"]
    if trained["kind"] == "mix":
        return list(trained["content_sha256"])
    return [] if trained["kind"] == "full" else [trained["content_sha256"]]


def record_is_current(job: dict) -> bool:
    """A record exists and was made under the job's rule, with its weights (and, for a
    compute-matched arm, for its budget; for a set arm, on its sets as they are now): one
    made otherwise (an older stand-in, a set made again) is run again and replaced, never
    mixed in."""
    path = Path(job["record"])
    if not path.exists():
        return False
    record = json.loads(path.read_text())
    return (record.get("rule") == job["rule"] and record.get("budget") == job.get("budget")
            and same_weights(record.get("weights"), job["weights"],
                             record.get("weights_sha256"))
            and (job.get("sets_sha256") is None
                 or trained_sets_sha256(record) == job["sets_sha256"]))


def chosen_learning_rate(paths: BenchmarkPaths, rule: SelectionRule, dataset: str, model: str,
                         arm: str, weights: str, budget: dict | None = None) -> float | None:
    """The rule's choice among the grid's seed-0 runs, once all have run under it with
    `weights` (and, for a compute-matched arm, for its budget)."""
    scores = {}
    for lr in rule.learning_rates:
        path = record_path(paths, dataset, model, arm, lr, 0)
        if not record_is_current({"record": path, "rule": rule.record(), "budget": budget,
                                  "weights": weights,
                                  "sets_sha256": current_sets(paths, dataset, arm, weights)}):
            return None
        scores[lr] = json.loads(path.read_text())["best_val_mse"]
    return rule.choose(scores)


def matched_budget(paths: BenchmarkPaths, rule: SelectionRule, dataset: str, model: str,
                   weights: str, matched: tuple[str, str], seeds: int) -> dict | None:
    """Full data's step budget to match a set arm, once all its seeds have run: the mean
    steps they ran ("train"), plus the set's distillation FLOPs in full-data steps at equal
    FLOPs per step ("total"; the same model and batch in every arm). The conversion at equal
    wall time is recorded beside it, from the set's distillation and full data's steps."""
    from hdt_finetune.distill.distill_flops import set_flops
    from hdt_finetune.synthetic import read_synthetic_set

    arm, kind = matched
    lr = chosen_learning_rate(paths, rule, dataset, model, arm, weights)
    if lr is None:
        return None
    paths_of_seeds = [record_path(paths, dataset, model, arm, lr, seed) for seed in range(seeds)]
    sets = current_sets(paths, dataset, arm, weights)
    if not all(record_is_current({"record": path, "rule": rule.record(),
                                  "weights": weights, "sets_sha256": sets})
               for path in paths_of_seeds):
        return None
    runs = [json.loads(path.read_text()) for path in paths_of_seeds]
    steps = sum(r["steps"] for r in runs) / len(runs)
    cost = runs[0]["cost"]
    flops_per_step = cost["flops"] / cost["optimizer_steps"]
    # A mixed arm's distillation is every member's (a Random member costs nothing).
    manifests = [read_synthetic_set(f).manifest
                 for f in set_folders(paths, dataset, arm, weights)]
    distill_flops = sum(set_flops(m).total for m in manifests)
    budget = {"arm": arm, "kind": kind, "set_steps": steps, "flops_per_step": flops_per_step,
              "distill_flops": distill_flops,
              "distill_wall_s": sum(m["cost"]["wall_s"] for m in manifests)}
    # One set keeps the field as the existing records store it.
    sha = [m["content_sha256"] for m in manifests]
    budget.update({"set_sha256": sha[0]} if len(sha) == 1 else {"sets_sha256": sha})
    extra = distill_flops / flops_per_step if kind == "total" else 0.0
    return {**budget, "steps": max(1, round(steps + extra))}


# --- the plan ------------------------------------------------------------------------------

def run(args: RunArgs) -> None:
    import torch
    from finetune_cost_report import report

    torch.set_num_threads(1)  # the stand-in is pretrained here, like every run: one thread
    paths, rule = BenchmarkPaths.of(args.smoke), BENCHMARK_RULE
    unknown = set(args.arms) - set(LABELS)
    if unknown:
        raise SystemExit(f"error: unknown arms {sorted(unknown)}; known: {sorted(LABELS)}")
    if args.smoke:
        args = RunArgs(datasets=("ETTh1",), size="tiny", seeds=1, weights="random",
                       arms=args.arms, smoke=True)
        rule = SMOKE_RULE
    size, seeds, workers = args.size, args.seeds, args.workers
    model = f"moirai-{size}"

    def wanted(arm: str) -> bool:
        return not args.arms or arm in args.arms

    for dataset in args.datasets:
        # The weights first: a set distilled for the model (hdt_fm) needs them.
        weights = resolve_weights(dataset, size, args.weights, paths)
        print(f"{dataset}: weights {weights}", flush=True)
        needed = [Candidate(arm, "arm", recipes, "") for arm, recipes in SET_ARMS.items()
                  if wanted(arm) or any(wanted(m) for m, (a, _) in MATCHED_ARMS.items()
                                        if a == arm)]
        run_in_workers(distil_job, distil_jobs(paths, dataset, needed, weights, args.smoke), 1)
        arms = [arm for arm in TRAINED_ARMS if wanted(arm)]

        def job(arm: str, lr: float | None, seed: int, weights: str = weights,
                dataset: str = dataset, budget: dict | None = None) -> dict:
            return arm_job(paths, rule, dataset, size, weights, arm, lr, seed, budget)

        jobs = [j for j in (job("zeroshot", None, 0), job("random_init", None, 0, "random"))
                if wanted(j["arm"])]
        jobs += [job(arm, lr, 0) for arm in arms for lr in rule.learning_rates]
        run_in_workers(finetune_job, [{**j, "concurrent_runs": workers} for j in jobs
                                      if not record_is_current(j)], workers)
        chosen = {arm: chosen_learning_rate(paths, rule, dataset, model, arm, weights)
                  for arm in arms}
        jobs = [job(arm, chosen[arm], seed) for arm in arms
                for seed in range(1, arm_seeds(arm, seeds)) if chosen[arm] is not None]
        run_in_workers(finetune_job, [{**j, "concurrent_runs": workers} for j in jobs
                                      if not record_is_current(j)], workers)
        # Full data at the set arms' compute, under the same rule (its own grid and seeds).
        budgets = {arm: matched_budget(paths, rule, dataset, model, weights, matched,
                                       arm_seeds(matched[0], seeds))
                   for arm, matched in MATCHED_ARMS.items() if wanted(arm)}
        budgets = {arm: budget for arm, budget in budgets.items() if budget is not None}
        for phase in ("grid", "seeds"):
            chosen = {arm: chosen_learning_rate(paths, rule, dataset, model, arm, weights,
                                                budget)
                      for arm, budget in budgets.items()}
            jobs = ([job(arm, lr, 0, budget=budgets[arm]) for arm in budgets
                     for lr in rule.learning_rates] if phase == "grid" else
                    [job(arm, chosen[arm], seed, budget=budgets[arm]) for arm in budgets
                     for seed in range(1, arm_seeds(arm, seeds)) if chosen[arm] is not None])
            run_in_workers(finetune_job, [{**j, "concurrent_runs": workers} for j in jobs
                                          if not record_is_current(j)], workers)
    report(paths)


def main(argv: list[str] | None = None) -> int:
    command, args = command_line(argv, {"run": RunArgs(), "standin": StandinArgs(),
                                        "report": ReportArgs()}, __doc__)
    if command == "run":
        run(args)
    elif command == "standin":
        standins(args)
    else:
        from finetune_cost_report import report

        report(BenchmarkPaths.of(args.smoke))
    return 0


if __name__ == "__main__":
    sys.exit(main())
