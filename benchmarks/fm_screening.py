"""The screen of the levers that might make a distilled set beat full data at equal compute
(foundation-model-aware HDT, soft targets, mixed and larger sets), on ETTh1 and ETTm1 only,
one seed, judged on validation only. It chooses the default HDT variant that then runs on all
five datasets (finetune_cost.py), before any run on ETTh2, ETTm2 or exchange_rate.

    python benchmarks/fm_screening.py run [datasets=ETTh1,ETTm1] [candidates=hdt,hdt_fm] [workers=1]
    python benchmarks/fm_screening.py report
    python benchmarks/fm_screening.py run grid=wide    # lever 4: the wider learning-rate grid
    python benchmarks/fm_screening.py run smoke=true   # minutes: tiny Moirai, tiny sets

Every candidate (set_recipes.CANDIDATES: the HDT variants, as many CondTSF variants, Random at
every size a larger or mixed set has, and full data) is fine-tuned from the same weights
under the fine-tuning benchmark's selection rule (finetune_cost_arms.RULE: its learning-rate
grid, warm-up, validation schedule and patience, the same for every arm), seed 0 only,
without its test: no test probes along the curve and no final test (`test` is null in the
records; ETTh1's records, made before, carry test numbers that nothing reads).

The score of a candidate on a dataset is its best validation MSE divided by full data's best
validation MSE within the same total FLOPs (the candidate's fine-tune plus its sets'
distillation), read off full data's validation curve; below 1 means ahead of full data at
equal compute. The default is the HDT variant with the lowest mean score over the screened
datasets; the best CondTSF variant is named the same way. Full data's curve comes from a run
with the schedule of its own length, not of the matched budget: the screen's ratio is an
estimate; the five-dataset run trains full data at each arm's budget.

Lever 4, a schedule for small sets: `grid=wide` runs full data, HDT, CondTSF and Random (and
the best HDT and CondTSF variants once chosen) at the learning rates of
finetune_cost_arms.WIDE_GRID, the same grid for each; the rule's own points are shared with
the main screen (run the two grids one after the other, not at once: they share those runs'
folders). The report scores them again with the wider grid (full data's reference then has
it too) beside their main-grid scores. Lever 4 is judged like the others, on the default: the
wider grid is adopted for the five-dataset run (for every arm) when it lowers the default's
mean score; the summary's "wide_grid"."adopted" says so once the default has both grids.

One JSON record per (dataset, candidate, learning rate) in results/fm_screening/records/;
generated from them: results/fm_screening/report.md and results/fm_screening_summary.json.
"""

from __future__ import annotations

import json
import statistics
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from benchmark_jobs import (
    BenchmarkPaths,
    ReportArgs,
    command_line,
    distil_job,
    provenance_line,
    run_in_workers,
)
from finetune_cost import (
    arm_job,
    finetune_job,
    resolve_weights,
    same_weights,
    trained_sets_sha256,
)
from finetune_cost_arms import (
    BEST_CONDTSF_VARIANT,
    DEFAULT_VARIANT,
    RULE,
    SMOKE_RULE,
    WIDE_GRID,
    SelectionRule,
)
from set_recipes import BY_NAME, CANDIDATES, Candidate, distil_jobs, sets_sha256

SCREEN_DATASETS = ("ETTh1", "ETTm1")
# A rule's settings that only say what is tested: a run's training and validation, hence its
# score, do not depend on them (exactly since each evaluation seeds its own samples; before,
# test probes moved the random state Moirai's validation samples came from, so ETTh1's
# records, made with probes, agree with probe-free runs in distribution, not bit for bit).
TEST_ONLY = ("curve_test_stride", "test_stride")


def validation_only(rule: SelectionRule) -> SelectionRule:
    """`rule` without any test: the screen is judged on validation only, and in ETTh1's 54
    records the test probes alone took as long as the validations (1.3 h each, summed), the
    final test coming on top (ETTh1's records carry test numbers that nothing reads)."""
    return replace(rule, curve_test_stride=0, test_stride=0)


SCREEN_RULE, SCREEN_WIDE_GRID, SCREEN_SMOKE_RULE = map(validation_only,
                                                       (RULE, WIDE_GRID, SMOKE_RULE))
SMOKE_CANDIDATES = ("full", "hdt", "hdt_fm", "fewshot+hdt_soft", "random")
# The arms offered the wider grid (lever 4): full data, the published methods and Random,
# and once the screen has chosen, the best variant of each family alike.
SCHEDULE_CANDIDATES = ("full", "hdt", "condtsf", "random",
                       *(v for v in (DEFAULT_VARIANT, BEST_CONDTSF_VARIANT)
                         if v not in (None, "hdt", "condtsf")))


@dataclass(frozen=True)
class RunArgs:
    datasets: tuple[str, ...] = SCREEN_DATASETS
    candidates: tuple[str, ...] = ()  # names in set_recipes.CANDIDATES; empty: all
    size: str = "small"
    weights: Literal["auto", "hub", "standin", "random"] = "auto"
    workers: int = 1  # runs at a time, one thread each (recorded in every record)
    grid: Literal["rule", "wide"] = "rule"  # wide: lever 4 (SCHEDULE_CANDIDATES by default)
    smoke: bool = False


def results(paths: BenchmarkPaths) -> Path:
    return paths.results / "fm_screening"


def record_path(paths: BenchmarkPaths, dataset: str, candidate: str, lr: float) -> Path:
    return results(paths) / "records" / f"{dataset}__{candidate}__lr{lr:g}.json"


def screen_job(paths: BenchmarkPaths, rule: SelectionRule, dataset: str, size: str,
               weights: str, candidate: Candidate, lr: float, workers: int) -> dict:
    job = arm_job(paths, rule, dataset, size, weights, candidate.name, lr, 0,
                  train_data=candidate.train_data(paths, dataset, weights),
                  record=record_path(paths, dataset, candidate.name, lr))
    return {**job, "concurrent_runs": workers,
            "sets_sha256": sets_sha256(paths, dataset, candidate, weights)}


def per_run(rule: dict | None) -> dict | None:
    """The part of a recorded rule that one run's score depends on: all but the
    learning-rate grid, so that the main screen and the wider grid share the runs at their
    common points, and but what it tests."""
    return None if rule is None else {k: v for k, v in rule.items()
                                      if k not in ("learning_rates", *TEST_ONLY)}


def record_is_current(job: dict) -> bool:
    """A record made under the job's rule (its grid aside), from its weights, on its sets as
    they are now (a set made again, or with other settings, has another checksum)."""
    path = Path(job["record"])
    if not path.exists():
        return False
    record = json.loads(path.read_text())
    return (per_run(record.get("rule")) == per_run(job["rule"])
            and trained_sets_sha256(record) == job["sets_sha256"]
            and same_weights(record.get("weights"), job["weights"],
                             record.get("weights_sha256")))


def run(args: RunArgs) -> None:
    import torch

    torch.set_num_threads(1)
    paths = BenchmarkPaths.of(args.smoke)
    rule = SCREEN_WIDE_GRID if args.grid == "wide" else SCREEN_RULE
    names = args.candidates or (SCHEDULE_CANDIDATES if args.grid == "wide"
                                else tuple(c.name for c in CANDIDATES))
    unknown = sorted(set(names) - set(BY_NAME))
    if unknown:
        raise SystemExit(f"error: unknown candidates {unknown}; known: {sorted(BY_NAME)}")
    if args.smoke:
        args = RunArgs(datasets=("ETTh1",), candidates=args.candidates or SMOKE_CANDIDATES,
                       size="tiny", weights="random", smoke=True)
        names, rule = args.candidates, SCREEN_SMOKE_RULE
    candidates = [BY_NAME[n] for n in names]
    for dataset in args.datasets:
        weights = resolve_weights(dataset, args.size, args.weights, paths)
        print(f"{dataset}: weights {weights}", flush=True)
        run_in_workers(distil_job, distil_jobs(paths, dataset, candidates, weights, args.smoke),
                       args.workers)
        runs = [screen_job(paths, rule, dataset, args.size, weights, c, lr, args.workers)
                for c in candidates for lr in rule.learning_rates]
        run_in_workers(finetune_job, [j for j in runs if not record_is_current(j)],
                       args.workers)
    # The wider grid's runs are read into the main report (its lever-4 section).
    report(paths, SCREEN_SMOKE_RULE if args.smoke else SCREEN_RULE,
           SCREEN_DATASETS if not args.smoke else args.datasets)


# --- the report ----------------------------------------------------------------------------

def full_val_within(runs: list[dict], flops: float) -> float | None:
    """Full data's best validation MSE among its validations within `flops` of training, at
    any learning rate of the grid (a small budget may favour another one than full data's
    own choice, as a candidate's choice is its best over the grid too); the starting
    weights' validation is always within; None without a curve."""
    seen = []
    for full in runs:
        per_step = full["cost"]["flops"] / max(1, full["cost"]["optimizer_steps"])
        seen += [row["val_mse"] for row in full["curve"]
                 if "val_mse" in row and row["step"] * per_step <= flops]
    return min(seen) if seen else None


def score_table(records: list[dict], rule: SelectionRule) -> dict:
    """{dataset: {candidate: row}}: each candidate at the learning rate the rule's grid
    chooses (a run at a point outside the grid is not offered)."""
    by_cell: dict[tuple[str, str], dict[float, dict]] = {}
    for r in records:
        if r["learning_rate"] in rule.learning_rates:
            by_cell.setdefault((r["dataset"], r["arm"]), {})[r["learning_rate"]] = r
    table: dict[str, dict[str, dict]] = {}
    for (dataset, name), grid in by_cell.items():
        if set(grid) != set(rule.learning_rates):
            continue  # the grid is not complete yet
        lr = rule.choose({lr: r["best_val_mse"] for lr, r in grid.items()})
        table.setdefault(dataset, {})[name] = {"learning_rate": lr, "record": grid[lr]}
    for dataset, rows in table.items():
        full = rows.get("full")
        full_runs = list(by_cell[(dataset, "full")].values()) if full else []
        for row in rows.values():
            r = row["record"]
            distill = r.get("distill_flops", 0.0)
            total = r["cost"]["flops"] + distill
            within = full_val_within(full_runs, total) if full else None
            row.update({
                "val_mse": r["best_val_mse"], "steps": r["steps"], "total_flops": total,
                "full_val_same_total_flops": within,
                "score": r["best_val_mse"] / within if within else None,
                # The score's two factors: what the set teaches, whatever it cost (against
                # full data's best, at any cost), and how far full data had got within the
                # same total FLOPs (its best over its best by then: at most 1, and 1 once
                # the set's compute has bought full data its best). Beside them, the
                # distillation's share of full data's whole selected fine-tune.
                "val_over_full_best": r["best_val_mse"] / full["record"]["best_val_mse"]
                if full else None,
                "full_best_over_full_same_total_flops": full["record"]["best_val_mse"] / within
                if full and within else None,
                "distill_over_full_finetune": distill / full["record"]["cost"]["flops"]
                if full else None,
                "points": r["train_data"]["points"],
                "fraction_of_train": (r["train_data"]["points"]
                                      / full["record"]["train_data"]["points"]
                                      if full else None),
            })
    return table


def choose(table: dict, datasets: tuple[str, ...], family: str) -> tuple[str | None, dict]:
    """The candidate of `family` with the lowest mean score over `datasets`, among those
    scored on all of them, and every such candidate's mean score."""
    means = {}
    for candidate in CANDIDATES:
        if candidate.family != family:
            continue
        scores = [table.get(d, {}).get(candidate.name, {}).get("score") for d in datasets]
        if all(s is not None for s in scores):
            means[candidate.name] = statistics.fmean(scores)
    return (min(means, key=means.get) if means else None), means


def comparable(records: list[dict], rule: SelectionRule) -> tuple[list[dict], int]:
    """The records of the rule (its grid aside) and, per dataset, of one set of weights (the
    most common path and checksum): a candidate is never scored against full data from other
    weights."""
    records = [r for r in records if per_run(r.get("rule")) == per_run(rule.record())]
    by_dataset: dict[str, list] = {}
    for r in records:
        by_dataset.setdefault(r["dataset"], []).append((r["weights"], r.get("weights_sha256")))
    chosen = {d: max(set(ws), key=ws.count) for d, ws in by_dataset.items()}
    kept = [r for r in records if (r["weights"], r.get("weights_sha256")) == chosen[r["dataset"]]]
    return kept, len(records) - len(kept)


def wide_grid_rows(records: list[dict], table: dict, datasets: tuple[str, ...]) -> dict:
    """Lever 4: {dataset: {candidate: row}}, each schedule candidate's learning rate and score
    with the rule's grid and with the wider one (None until its wider grid is complete)."""
    wide = score_table([r for r in records if r["arm"] in SCHEDULE_CANDIDATES],
                       SCREEN_WIDE_GRID)
    rows: dict[str, dict] = {}
    for dataset in datasets:
        for name in SCHEDULE_CANDIDATES:
            main, wider = table.get(dataset, {}).get(name), wide.get(dataset, {}).get(name)
            if main is None and wider is None:
                continue
            rows.setdefault(dataset, {})[name] = {
                f"{grid}_{key}": (row or {}).get(key)
                for grid, row in (("rule", main), ("wide", wider))
                for key in ("learning_rate", "val_mse", "score")}
    return rows


def wide_grid_adopted(rows: dict, default: str | None, datasets: tuple[str, ...]
                      ) -> bool | None:
    """Lever 4's verdict: True when the default's mean score over `datasets` is lower with
    the wider grid than with the rule's; None until it has both scores on every dataset."""
    if default is None:
        return None
    pairs = [rows.get(d, {}).get(default, {}) for d in datasets]
    if any(p.get("rule_score") is None or p.get("wide_score") is None for p in pairs):
        return None
    return (statistics.fmean(p["wide_score"] for p in pairs)
            < statistics.fmean(p["rule_score"] for p in pairs))


def report(paths: BenchmarkPaths, rule: SelectionRule = SCREEN_RULE,
           datasets: tuple[str, ...] = SCREEN_DATASETS) -> None:
    """The default is chosen only once every candidate has run on every one of `datasets`."""
    from hdt_finetune.atomic_files import atomic_write_json, atomic_write_text

    folder = results(paths)
    everything = [json.loads(p.read_text())
                  for p in sorted((folder / "records").glob("*.json"))]
    records, left_out = comparable(everything, rule)
    if len(everything) - len(records):
        print(f"left out {len(everything) - len(records)} record(s) of another rule or "
              f"weights ({left_out} of other weights)")
    table = score_table(records, rule)
    expected = {(d, c.name) for d in datasets for c in CANDIDATES}
    complete = expected <= {(d, n) for d, rows in table.items() for n in rows}
    default, hdt_means = choose(table, datasets, "hdt")
    best_condtsf, condtsf_means = choose(table, datasets, "condtsf")
    wide = wide_grid_rows(records, table, datasets) if rule == SCREEN_RULE else {}
    summary = {
        "datasets": list(datasets), "complete": complete,
        "default": default if complete else None,
        "best_condtsf": best_condtsf if complete else None,
        "mean_score": {**hdt_means, **condtsf_means},
        "configurations": {f: sum(c.family == f for c in CANDIDATES)
                           for f in ("hdt", "condtsf")},
        "rule": rule.record(),
        "wide_grid": {"learning_rates": list(SCREEN_WIDE_GRID.learning_rates), "scores": wide,
                      "adopted": wide_grid_adopted(wide, default if complete else None,
                                                   datasets)},
        "scores": {d: {n: {k: v for k, v in row.items() if k != "record"}
                       for n, row in rows.items()} for d, rows in table.items()},
    }
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(paths.results / "fm_screening_summary.json", summary)
    atomic_write_text(folder / "report.md", _markdown(table, datasets, summary, records))
    print(f"wrote {folder / 'report.md'}")


def cell(value, fmt: str) -> str:
    """A table cell: blank where there is no value yet."""
    return "" if value is None else format(value, fmt)


def _markdown(table: dict, datasets: tuple[str, ...], summary: dict, records: list[dict]
              ) -> str:
    lines = [
        "# Screening the levers (validation only)", "",
        "Generated by `benchmarks/fm_screening.py` from its records; do not edit.", "",
        f"Datasets: {', '.join(datasets) or 'none yet'}; seed 0; the fine-tuning benchmark's "
        "selection rule for every candidate, without its test (the runs are not tested; "
        "records made before that carry test numbers that nothing reads). Score: best "
        "validation MSE / full data's best validation MSE within the same total FLOPs "
        "(fine-tune + distillation), read off full data's own validation curve; below 1 is "
        "ahead of full data at equal compute.", "",
        f"Configurations screened: {summary['configurations']['hdt']} HDT variants and "
        f"{summary['configurations']['condtsf']} CondTSF variants (equal budgets).", "",
    ]
    if summary["complete"]:
        lines += [f"**Default (lowest mean score among the HDT variants): "
                  f"`{summary['default']}`.** Best CondTSF variant: "
                  f"`{summary['best_condtsf']}`.", ""]
    else:
        lines += ["The screen is not complete: no default is chosen yet.", ""]
    for dataset in datasets:
        lines += [f"## {dataset}", "",
                  "| candidate | family | what | fraction of train | lr | steps | val MSE | "
                  "total FLOPs | full val at equal FLOPs | score |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for candidate in CANDIDATES:
            row = table.get(dataset, {}).get(candidate.name)
            if row is None:
                continue
            lines.append(
                f"| {candidate.name} | {candidate.family} | {candidate.note} | "
                f"{cell(row['fraction_of_train'], '.3f')} | {row['learning_rate']:g} | "
                f"{row['steps']} | {row['val_mse']:.4f} | {row['total_flops']:.2e} | "
                f"{cell(row['full_val_same_total_flops'], '.4f')} | "
                f"{cell(row['score'], '.3f')} |")
        lines.append("")
    if summary["wide_grid"]["scores"]:
        lines += ["## Lever 4: a schedule for small sets", "",
                  "The same candidates with the learning-rate grid widened to "
                  f"{', '.join(f'{lr:g}' for lr in summary['wide_grid']['learning_rates'])} "
                  "(full data's reference has the wider grid too); the length is the rule's "
                  "step schedule and patience in both.", "",
                  "| dataset | candidate | lr | val MSE | score | wide-grid lr | "
                  "wide-grid val MSE | wide-grid score |", "|---|---|---|---|---|---|---|---|"]
        for dataset, rows in summary["wide_grid"]["scores"].items():
            for name, row in rows.items():
                lines.append(
                    f"| {dataset} | {name} | {cell(row['rule_learning_rate'], 'g')} | "
                    f"{cell(row['rule_val_mse'], '.4f')} | {cell(row['rule_score'], '.3f')} | "
                    f"{cell(row['wide_learning_rate'], 'g')} | "
                    f"{cell(row['wide_val_mse'], '.4f')} | {cell(row['wide_score'], '.3f')} |")
        adopted = summary["wide_grid"]["adopted"]
        lines += ["", "Not judged yet: the default needs both grids on every screened dataset."
                  if adopted is None else
                  f"**The wider grid is {'adopted' if adopted else 'not adopted'}** for the "
                  "five-dataset run: it " + ("lowers" if adopted else "does not lower")
                  + " the default's mean score.", ""]
    lines += _lever_lines(table, datasets)
    lines += ["## Mean score over the screened datasets", "",
              "| candidate | mean score |", "|---|---|"]
    lines += [f"| {name} | {score:.3f} |"
              for name, score in sorted(summary["mean_score"].items(), key=lambda kv: kv[1])]
    lines += ["", provenance_line(records)]
    return "\n".join(lines) + "\n"


def _lever_lines(table: dict, datasets: tuple[str, ...]) -> list[str]:
    """Why a candidate scores as it does: its score split into what the set teaches and
    what its total compute leaves of full data's progress, beside its distillation's share
    of full data's fine-tune (markdown)."""
    if not any("full" in table.get(d, {}) for d in datasets):
        return []
    lines = ["## What each lever showed", "",
             "Each score is the product of two factors, given here per dataset: what the set "
             "teaches whatever it costs ('teaches': its best val MSE over full data's best "
             "val MSE at full data's own length), and how far full data had got within the "
             "same total FLOPs ('full data by then': full data's best over its best within "
             "those FLOPs; at most 1, and 1 once the set's compute has bought full data its "
             "best). A set scores below 1 only where it teaches almost as much as full data "
             "and costs little enough to leave full data short of its best. 'vs HDT' is the "
             "val MSE over HDT's set's; the last column is the distillation's FLOPs over full "
             "data's whole fine-tune. One seed: gaps of a few percent may be noise.", "",
             "| candidate | " + " | ".join(
                 f"{d} teaches | {d} full data by then | {d} vs HDT | "
                 f"{d} distillation / full fine-tune" for d in datasets) + " |",
             "|---|" + "---|---|---|---|" * len(datasets)]
    for candidate in CANDIDATES:
        if candidate.name == "full":
            continue
        rows = [table.get(d, {}).get(candidate.name) for d in datasets]
        if all(row is None for row in rows):
            continue
        cells = []
        for dataset, row in zip(datasets, rows, strict=True):
            hdt = table.get(dataset, {}).get("hdt")
            row = row or {}
            cells += [cell(row.get("val_over_full_best"), ".3f"),
                      cell(row.get("full_best_over_full_same_total_flops"), ".3f"),
                      cell(row["val_mse"] / hdt["val_mse"] if row and hdt else None, ".3f"),
                      cell(row.get("distill_over_full_finetune"), ".3f")]
        lines.append(f"| {candidate.name} | " + " | ".join(cells) + " |")
    return lines + [""]


def main(argv: list[str] | None = None) -> int:
    command, args = command_line(argv, {"run": RunArgs(), "report": ReportArgs()}, __doc__)
    if command == "run":
        run(args)
    elif args.smoke:
        report(BenchmarkPaths.of(True), SCREEN_SMOKE_RULE, ("ETTh1",))
    else:
        report(BenchmarkPaths.of(False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
