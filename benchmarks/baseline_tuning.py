"""Equal tuning for the baselines: MTT and CondTSF get the validation search HDT had.

HDT's defaults were chosen in about 30 validation runs (one distillation evaluated on one
dataset's validation split), on ETTh1, ETTh2 and ETTm2
(results/distill_quality/tuning_etth1.md). Each baseline gets the same: CONFIGURATIONS
holds 15 settings per method over its own open choices, each distilled once (seed 0,
M = 384) on ETTh1 and on ETTm1 and evaluated there, so 30 validation runs per method. An
evaluation is the harness's: DLinear, iTransformer and xPatch, training seeds 0 and 1, as
HDT's later rounds. The choice is the configuration with the lowest score: the mean, over
the two datasets and three backbones, of its validation MSE divided by the method's
defaults' (so neither dataset's scale dominates). Test MSE is recorded and never used.

    python benchmarks/baseline_tuning.py run [methods=mtt,condtsf] [workers=1]
    python benchmarks/baseline_tuning.py report
    python benchmarks/baseline_tuning.py run smoke=true   # a minute: 2 configurations, tiny

One JSON record per (dataset, method, configuration, backbone) in
results/baseline_tuning/records/, with its set's checksum; report.md and chosen.json are
generated from them. A killed run resumes: finished records are kept.
"""

from __future__ import annotations

import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from benchmark_jobs import (
    SMOKE_DISTILL,
    BenchmarkPaths,
    command_line,
    distil_job,
    evaluate_job,
    load_records,
    plan,
    run_in_workers,
)

DATASETS = ("ETTh1", "ETTm1")  # the tuning datasets; the others are reported apart
BACKBONES = ("dlinear", "itransformer", "xpatch")
SEEDS = 2
LENGTH = 384

# Configuration name -> settings overrides; "defaults" first (the score's reference). The
# official CondTSF code's value term is beta 0.01 every 3rd iteration ("official_value").
CONFIGURATIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "mtt": {
        "defaults": (),
        "data_lr_0.003": ("data_lr=0.003",),
        "data_lr_0.03": ("data_lr=0.03",),
        "data_lr_0.1": ("data_lr=0.1",),
        "iterations_200": ("iterations=200",),
        "iterations_800": ("iterations=800",),
        "student_steps_10": ("student_steps=10",),
        "student_steps_40": ("student_steps=40",),
        "expert_snapshots_1": ("expert_snapshots=1",),
        "expert_snapshots_3": ("expert_snapshots=3",),
        "max_start_10": ("max_start_snapshot=10",),
        "init_aligned": ("init=aligned",),
        "student_lr_lr_0.01": ("student_lr_lr=0.01",),
        "data_lr_0.03_iterations_800": ("data_lr=0.03", "iterations=800"),
        "data_lr_0.03_aligned": ("data_lr=0.03", "init=aligned"),
    },
    "condtsf": {
        "defaults": (),
        "official_value": ("value_beta=0.01", "value_every=3"),
        "beta_0.05_every_10": ("value_beta=0.05", "value_every=10"),
        "beta_0.2_every_10": ("value_beta=0.2", "value_every=10"),
        "beta_0.5_every_20": ("value_beta=0.5", "value_every=20"),
        "beta_0.2_every_50": ("value_beta=0.2", "value_every=50"),
        "beta_0.1_every_5": ("value_beta=0.1", "value_every=5"),
        "data_lr_0.003": ("data_lr=0.003",),
        "data_lr_0.03": ("data_lr=0.03",),
        "data_lr_0.1": ("data_lr=0.1",),
        "iterations_200": ("iterations=200",),
        "iterations_800": ("iterations=800",),
        "student_steps_40": ("student_steps=40",),
        "init_aligned": ("init=aligned",),
        "official_value_data_lr_0.03": ("value_beta=0.01", "value_every=3", "data_lr=0.03"),
    },
}
SMOKE_CONFIGURATIONS = {"mtt": {"defaults": (), "data_lr_0.03": ("data_lr=0.03",)}}


@dataclass(frozen=True)
class RunArgs:
    methods: tuple[str, ...] = ("mtt", "condtsf")
    workers: int = 1  # one thread each; more share the machine (timings are not reported)
    smoke: bool = False  # ETTh1, MTT, 2 configurations at tiny settings, DLinear, one seed


@dataclass(frozen=True)
class ReportArgs:
    smoke: bool = False


def results(paths: BenchmarkPaths) -> Path:
    return paths.results / "baseline_tuning"


def cells(paths: BenchmarkPaths, configurations: dict, datasets: tuple[str, ...],
          extra: tuple[str, ...] = ()) -> list[dict]:
    return [{"dataset": d, "method": m, "configuration": name, "length": LENGTH,
             "settings": [*overrides, *extra], "shared_defaults": True,
             "set": str(paths.work / "tuning_sets" / f"{d}_{m}_{name}_M{LENGTH}_seed0")}
            for m, named in configurations.items() for name, overrides in named.items()
            for d in datasets]


def record_path(paths: BenchmarkPaths, cell: dict, backbone: str) -> Path:
    return (results(paths) / "records"
            / f"{cell['dataset']}__{cell['method']}__{cell['configuration']}__{backbone}.json")


def run(args: RunArgs) -> None:
    paths = BenchmarkPaths.of(args.smoke)
    if args.smoke:
        planned = cells(paths, SMOKE_CONFIGURATIONS, ("ETTh1",), SMOKE_DISTILL)
        backbones, seeds = ["dlinear"], 1
    else:
        unknown = set(args.methods) - set(CONFIGURATIONS)
        if unknown:
            raise SystemExit(f"error: methods {sorted(unknown)} have no search; "
                             f"known: {sorted(CONFIGURATIONS)}")
        planned = cells(paths, {m: CONFIGURATIONS[m] for m in args.methods}, DATASETS)
        backbones, seeds = list(BACKBONES), SEEDS
    distils, evals = plan(planned, backbones, seeds,
                          lambda cell, backbone: record_path(paths, cell, backbone))
    run_in_workers(distil_job, distils, args.workers)
    run_in_workers(evaluate_job, evals, args.workers)
    report(paths, args.smoke)


def check_settings(records: list[dict], configurations: dict,
                   extra: tuple[str, ...] = ()) -> None:
    """Every record was distilled with its configuration's settings as they stand: one of a
    configuration since edited or removed is refused (by file), never scored."""
    from dataclasses import asdict

    from hdt_finetune.distill.settings import DistillSettings
    from hdt_finetune.typed_overrides import apply_overrides

    for r in records:
        overrides = configurations.get(r["method"], {}).get(r["configuration"])
        expected = (None if overrides is None else
                    asdict(apply_overrides(DistillSettings(), [*overrides, *extra])))
        used = {k: v for k, v in r["distill_settings"].items() if k != "length"}
        if expected is None or any(used.get(k) != v for k, v in expected.items()
                                   if k != "checkpoint_every"):
            raise SystemExit(
                f"error: the record of {r['dataset']} {r['method']} {r['configuration']} "
                f"{r['backbone']} was not made with that configuration's settings as listed "
                "now; remove it and its set (runs/tuning_sets/) and rerun")


def scores(records: list[dict], cells_needed: int) -> dict[str, dict[str, dict]]:
    """method -> configuration -> {"val": {dataset: {backbone: mean val MSE}}, "test": ...,
    "score": mean val MSE relative to the defaults (None until the configuration and the
    defaults have all `cells_needed` (dataset, backbone) cells)}."""
    table: dict = defaultdict(lambda: defaultdict(lambda: {"val": defaultdict(dict),
                                                           "test": defaultdict(dict)}))
    for r in records:
        row = table[r["method"]][r["configuration"]]
        row["val"][r["dataset"]][r["backbone"]] = statistics.fmean(
            s["best_val_mse"] for s in r["seeds"])
        row["test"][r["dataset"]][r["backbone"]] = r["mse_mean"]
    for rows in table.values():
        reference = rows.get("defaults", {}).get("val", {})
        cells_of = {(d, b) for d, by_b in reference.items() for b in by_b}
        for row in rows.values():
            done = {(d, b) for d, by_b in row["val"].items() for b in by_b}
            row["score"] = (statistics.fmean(row["val"][d][b] / reference[d][b]
                                             for d, b in cells_of)
                            if len(cells_of) == cells_needed and done >= cells_of else None)
    return table


def report(paths: BenchmarkPaths, smoke: bool) -> None:
    from hdt_finetune.atomic_files import atomic_write_json, atomic_write_text

    out = results(paths)
    configurations = SMOKE_CONFIGURATIONS if smoke else CONFIGURATIONS
    # The smoke run's sets also carry its seconds-long settings.
    records = load_records(out / "records")
    check_settings(records, configurations, SMOKE_DISTILL if smoke else ())
    table = scores(records, 1 if smoke else len(DATASETS) * len(BACKBONES))
    lines = ["# Equal tuning for the baselines (generated from records/, do not edit)", "",
             "Validation MSE (mean of training seeds 0-1) of DLinear / iTransformer / xPatch "
             "trained on each configuration's set (M = 384, distillation seed 0). `score`: "
             "mean over datasets and backbones of validation MSE relative to the method's "
             "defaults; lowest wins. Test MSE is shown for the record, never used. Tuned on "
             f"{', '.join(DATASETS)} only; every other dataset is held out from this search.",
             ""]
    chosen = {}
    for method, rows in sorted(table.items()):
        finished = {name: row["score"] for name, row in rows.items()
                    if row["score"] is not None}
        best = min(finished, key=finished.get) if finished else None
        complete = set(finished) == set(configurations.get(method, {}))
        if best is not None:
            chosen[method] = {"configuration": best,
                              "overrides": list(configurations[method][best]),
                              "score": finished[best], "complete": complete,
                              "configurations_run": len(finished)}
        lines += [f"## {method}" + ("" if complete else " (search not finished)"), "",
                  "| configuration | overrides | " + " | ".join(
                      f"{d} val D/iT/xP" for d in DATASETS) + " | score | " + " | ".join(
                      f"{d} test mean" for d in DATASETS) + " |",
                  "|---|---|" + "---|" * (2 * len(DATASETS) + 1)]
        for name in configurations.get(method, {}):
            row = rows.get(name)
            if row is None:
                continue
            vals = ["/".join(f"{row['val'][d][b]:.3f}" if b in row["val"][d] else "-"
                             for b in BACKBONES) for d in DATASETS]
            tests = [f"{statistics.fmean(row['test'][d].values()):.3f}"
                     if row["test"][d] else "" for d in DATASETS]
            score = "" if row["score"] is None else f"{row['score']:.3f}"
            mark = " **chosen**" if name == best and complete else ""
            lines.append(f"| {name}{mark} | {' '.join(configurations[method][name]) or '-'} | "
                         f"{' | '.join(vals)} | {score} | {' | '.join(tests)} |")
        lines.append("")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "report.md", "\n".join(lines))
    atomic_write_json(out / "chosen.json", chosen)
    print(f"wrote {out / 'report.md'} and {out / 'chosen.json'}")


def main(argv: list[str] | None = None) -> int:
    command, args = command_line(argv, {"run": RunArgs(), "report": ReportArgs()}, __doc__)
    if command == "run":
        run(args)
    else:
        report(BenchmarkPaths.of(args.smoke), args.smoke)
    return 0


if __name__ == "__main__":
    sys.exit(main())
