"""What transfers from a small proxy to a larger model (issue 17, lever 1's proxy): sets made
with Moirai-small, the larger model never running during distillation, fine-tune Moirai-base.
Measured on this CPU with a few base runs.

    python benchmarks/proxy_transfer.py run [datasets=ETTh1] [size=base] [proxy=small] [workers=1]
    python benchmarks/proxy_transfer.py report
    python benchmarks/proxy_transfer.py run smoke=true   # minutes: tiny Moirai, tiny sets

Each arm fine-tunes the larger model from its stand-in (pretrained like the small one, on
the corpus without the dataset's family, for `standin_steps`), and is screened as
fm_screening.py screens its candidates: the fine-tuning benchmark's rule without its test,
seed 0, scored by its best validation MSE over full data's best within the same total FLOPs
(its fine-tune plus its sets' distillation, counted with the model that distilled them).
The arms:
- full data, the reference;
- the default set (`DEFAULT_ARM`; `hdt_soft_b05`, made without any foundation model): does
  its standing against full data carry over to the larger model?
- hdt_fm_lite and hdt_fm made with the proxy, the small stand-in of the same family: the
  expensive model never distils;
- hdt_fm_lite made with the larger model itself, the set the proxy's stands in for.
The proxy itself is fine-tuned the same way on full data, the default set and the proxy's
sets (PROXY_ARMS, the same sets), so each arm's score on the larger model sits beside its
score on the small model in one run, on one machine, with the weights that made the sets.
The report also shows the small screen's score (results/fm_screening_summary.json), made
with the screen's own stand-in, and the proxy's set beside the direct one.

One JSON record per (dataset, arm, learning rate) in results/proxy_transfer/records/;
generated from them: results/proxy_transfer/report.md and results/proxy_transfer_summary.json.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from benchmark_jobs import (
    BenchmarkPaths,
    ReportArgs,
    command_line,
    distil_job,
    provenance_line,
    run_in_workers,
    set_is_current,
)
from finetune_cost import arm_job, finetune_job, resolve_weights, trained_sets_sha256
from finetune_cost_arms import DEFAULT_ARM
from fm_screening import (
    SCREEN_RULE,
    SCREEN_SMOKE_RULE,
    cell,
    comparable,
    record_is_current,
    score_table,
)
from set_recipes import BY_NAME, distil_jobs, folder_sha256, sets_sha256


@dataclass(frozen=True)
class TransferArm:
    name: str
    candidate: str  # a set_recipes candidate
    made_with: Literal["model", "proxy"]  # whose weights a set for a model is distilled with
    note: str


ARMS = (
    TransferArm("full", "full", "model", "the full train split"),
    TransferArm(DEFAULT_ARM, DEFAULT_ARM, "model",
                "the five-dataset run's default set"),
    TransferArm("hdt_fm_lite_direct", "hdt_fm_lite", "model",
                "hdt_fm_lite distilled with the fine-tuned model itself"),
    TransferArm("hdt_fm_lite_proxy", "hdt_fm_lite", "proxy",
                "hdt_fm_lite distilled with the small proxy"),
    TransferArm("hdt_fm_proxy", "hdt_fm", "proxy", "hdt_fm distilled with the small proxy"),
)
BY_ARM = {arm.name: arm for arm in ARMS}
# The proxy fine-tuned on the sets it made (and on full data and the default set): the
# score each set has on the small model, in the same run as the larger model's.
PROXY_ARMS = (
    TransferArm("full", "full", "proxy", "the full train split"),
    TransferArm(DEFAULT_ARM, DEFAULT_ARM, "proxy", "the five-dataset run's default set"),
    TransferArm("hdt_fm_lite", "hdt_fm_lite", "proxy", "hdt_fm_lite distilled with itself"),
    TransferArm("hdt_fm", "hdt_fm", "proxy", "hdt_fm distilled with itself"),
)


@dataclass(frozen=True)
class RunArgs:
    datasets: tuple[str, ...] = ("ETTh1",)
    size: str = "base"  # the model fine-tuned
    proxy: str = "small"  # distils the proxy arms' sets, and is fine-tuned on them too
    # The larger stand-in's pretraining: a Moirai-base step has ~6.6x a Moirai-small one's
    # parameters to train, and the small stand-ins' held-back validation was within 2.9-3.3%
    # of their best by step 4,000 of their 10,000.
    standin_steps: int = 4000
    weights: Literal["auto", "hub", "standin", "random"] = "auto"
    workers: int = 1  # runs at a time, one thread each (recorded in every record)
    smoke: bool = False


def results(paths: BenchmarkPaths) -> Path:
    return paths.results / "proxy_transfer"


def record_path(paths: BenchmarkPaths, dataset: str, size: str, arm: str, lr: float,
                fine_tuned: str = "model") -> Path:
    # The proxy's own runs apart: with size == proxy (the smoke run) names would meet.
    tuned = "proxy__" if fine_tuned == "proxy" else ""
    return results(paths) / "records" / f"{dataset}__moirai-{size}__{tuned}{arm}__lr{lr:g}.json"


def set_weights(arm: TransferArm, weights: str, proxy_weights: str) -> str:
    """The weights a set for a model is distilled with (others ignore them)."""
    return proxy_weights if arm.made_with == "proxy" else weights


def transfer_job(paths: BenchmarkPaths, dataset: str, size: str, weights: str,
                 proxy_weights: str, arm: TransferArm, lr: float, workers: int,
                 smoke: bool, fine_tuned: Literal["model", "proxy"] = "model") -> dict:
    """One arm's run at one learning rate, fine-tuning `weights` (of `size`: the larger
    model, or the proxy itself); its record names the weights its set was distilled with,
    as well as those it fine-tunes."""
    candidate = BY_NAME[arm.candidate]
    made_with = set_weights(arm, weights, proxy_weights)
    rule = SCREEN_SMOKE_RULE if smoke else SCREEN_RULE
    job = arm_job(paths, rule, dataset, size, weights, arm.name, lr, 0,
                  train_data=candidate.train_data(paths, dataset, made_with),
                  record=record_path(paths, dataset, size, arm.name, lr, fine_tuned))
    made_by_model = any(m.needs_model for m in candidate.members)
    return {**job, "concurrent_runs": workers,
            "sets_sha256": sets_sha256(paths, dataset, candidate, made_with),
            "record_extra": {"fine_tuned": fine_tuned,
                             "set_weights": made_with if made_by_model else None,
                             "set_weights_sha256": _sha256(made_with) if made_by_model
                             else None}}


def _sha256(weights: str) -> str | None:
    return folder_sha256(str(Path(weights).resolve())) if Path(weights).is_dir() else None


def distillations(paths: BenchmarkPaths, dataset: str, weights: str, proxy_weights: str,
                  smoke: bool) -> list[dict]:
    """Every arm's sets not made yet, each distilled with the weights its arm names."""
    jobs = []
    for made_with, chosen in (("model", weights), ("proxy", proxy_weights)):
        names = dict.fromkeys(a.candidate for a in (*ARMS, *PROXY_ARMS)
                              if a.made_with == made_with)
        candidates = [BY_NAME[name] for name in names]
        jobs += [j for j in distil_jobs(paths, dataset, candidates, chosen, smoke)
                 if j["set"] not in {k["set"] for k in jobs}]
    return jobs


def made(paths: BenchmarkPaths, dataset: str, arms: tuple[TransferArm, ...], weights: str,
         proxy_weights: str) -> list[TransferArm]:
    """The arms whose sets were made: a failed distillation leaves its arm out, not the
    others."""
    kept = []
    for arm in arms:
        made_with = set_weights(arm, weights, proxy_weights)
        if all(set_is_current(m.folder(paths, dataset, made_with))
               for m in BY_NAME[arm.candidate].members):
            kept.append(arm)
        else:
            print(f"{dataset} {arm.name}: left out, its set was not made", flush=True)
    return kept


def run(args: RunArgs) -> None:
    import torch

    torch.set_num_threads(1)
    paths = BenchmarkPaths.of(args.smoke)
    if args.smoke:
        args = RunArgs(datasets=("ETTh1",), size="tiny", proxy="tiny", weights="random",
                       smoke=True)
    rule = SCREEN_SMOKE_RULE if args.smoke else SCREEN_RULE
    for dataset in args.datasets:
        weights = resolve_weights(dataset, args.size, args.weights, paths, args.standin_steps)
        proxy_weights = resolve_weights(dataset, args.proxy, args.weights, paths)
        print(f"{dataset}: weights {weights}, proxy {proxy_weights}", flush=True)
        run_in_workers(distil_job, distillations(paths, dataset, weights, proxy_weights,
                                                 args.smoke), args.workers)
        arms, proxy_arms = (made(paths, dataset, group, weights, proxy_weights)
                            for group in (ARMS, PROXY_ARMS))
        jobs = [transfer_job(paths, dataset, args.size, weights, proxy_weights, arm, lr,
                             args.workers, args.smoke)
                for arm in arms for lr in rule.learning_rates]
        jobs += [transfer_job(paths, dataset, args.proxy, proxy_weights, proxy_weights, arm,
                              lr, args.workers, args.smoke, fine_tuned="proxy")
                 for arm in proxy_arms for lr in rule.learning_rates]
        run_in_workers(finetune_job, [j for j in jobs if not record_is_current(j)],
                       args.workers)
    report(paths, rule)


# --- the report ----------------------------------------------------------------------------

def small_scores(paths: BenchmarkPaths) -> dict:
    """{dataset: {candidate: score}} of the small screen, where it has run."""
    summary = paths.results / "fm_screening_summary.json"
    if not summary.exists():
        return {}
    return {dataset: {name: row.get("score") for name, row in rows.items()}
            for dataset, rows in json.loads(summary.read_text())["scores"].items()}


def transfer_rows(table: dict, proxy: dict, small: dict) -> dict:
    """{dataset: {arm: row}}: each arm's score on the larger model, its candidate's on the
    proxy in the same run (only where the proxy trained on the very same sets: never for a
    set the larger model made, nor for one made again since) and in the small screen, what
    distilled its set and at what cost."""
    rows: dict = {}
    for dataset, arms in table.items():
        for name, row in arms.items():
            arm = BY_ARM.get(name)
            if arm is None:
                continue
            record = row["record"]
            on_proxy = proxy.get(dataset, {}).get(arm.candidate)
            if on_proxy and (trained_sets_sha256(on_proxy["record"])
                             != trained_sets_sha256(record)):
                on_proxy = None
            rows.setdefault(dataset, {})[name] = {
                "candidate": arm.candidate, "made_with": arm.made_with,
                "learning_rate": row["learning_rate"], "steps": row["steps"],
                "val_mse": row["val_mse"], "best_step": best_step(record),
                "val_over_full_best": row["val_over_full_best"],
                "proxy_val_over_full_best": on_proxy["val_over_full_best"] if on_proxy
                else None,
                "distill_flops": record.get("distill_flops", 0.0),
                "total_flops": row["total_flops"],
                "full_val_same_total_flops": row["full_val_same_total_flops"],
                "score": row["score"],
                "proxy_score": on_proxy["score"] if on_proxy else None,
                "small_screen_score": small.get(dataset, {}).get(arm.candidate)}
    return rows


def best_step(record: dict) -> int | None:
    """The step whose weights the rule kept (0: the starting weights)."""
    scored = [row for row in record["curve"] if "val_mse" in row]
    return min(scored, key=lambda row: row["val_mse"])["step"] if scored else None


def step0_val(records: list[dict], dataset: str) -> float | None:
    """The starting weights' validation MSE (full data's step 0)."""
    for r in records:
        if r["dataset"] == dataset and r["arm"] == "full":
            for row in r["curve"]:
                if row.get("step") == 0 and "val_mse" in row:
                    return row["val_mse"]
    return None


def one_set_per_arm(records: list[dict]) -> tuple[list[dict], list[tuple[str, str]]]:
    """The records of each (dataset, arm) whose runs all trained on the same sets: a grid
    whose learning rates saw different sets (a proxy pretrained again, say) is not scored."""
    sets: dict[tuple[str, str], set] = {}
    for r in records:
        sets.setdefault((r["dataset"], r["arm"]), set()).add(tuple(trained_sets_sha256(r)))
    mixed = sorted(key for key, seen in sets.items() if len(seen) > 1)
    return [r for r in records if (r["dataset"], r["arm"]) not in mixed], mixed


def report(paths: BenchmarkPaths, rule=SCREEN_RULE) -> None:
    from hdt_finetune.atomic_files import atomic_write_json, atomic_write_text

    folder = results(paths)
    everything = [json.loads(p.read_text()) for p in sorted((folder / "records").glob("*.json"))]
    kept = {}
    for fine_tuned in ("model", "proxy"):  # each scored against its own full data
        group = [r for r in everything if r.get("fine_tuned", "model") == fine_tuned]
        records, left_out = comparable(group, rule)
        if len(group) - len(records):
            print(f"left out {len(group) - len(records)} record(s) fine-tuning the "
                  f"{fine_tuned} of another rule or weights ({left_out} of other weights)")
        records, mixed = one_set_per_arm(records)
        for dataset, arm in mixed:
            print(f"{dataset} {arm} ({fine_tuned}): left out, its learning rates ran on "
                  "different sets (a set made again, or with other weights, part-way): run "
                  "it again")
        kept[fine_tuned] = records
    records = kept["model"]
    rows = transfer_rows(score_table(records, rule), score_table(kept["proxy"], rule),
                         small_scores(paths))
    summary = {"rule": rule.record(), "rows": rows,
               "weights": sorted({r["weights"] for r in records}),
               "proxy_weights": sorted({r["weights"] for r in kept["proxy"]}),
               "set_weights": sorted({r["set_weights"] for r in records
                                      if r.get("set_weights")}),
               "start_val_mse": {d: step0_val(records, d) for d in rows}}
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(paths.results / "proxy_transfer_summary.json", summary)
    atomic_write_text(folder / "report.md",
                      _markdown(rows, summary, records + kept["proxy"]))
    print(f"wrote {folder / 'report.md'}")


def proxy_lines(rows: dict, start: float | None) -> list[str]:
    """The proxy's set against the direct one, and the default set on both models, where
    they have scores."""
    lines = []
    proxy, direct = rows.get("hdt_fm_lite_proxy"), rows.get("hdt_fm_lite_direct")
    if proxy and direct and proxy["score"] is not None and direct["score"] is not None:
        scores = (f"score {proxy['score']:.3f} against {direct['score']:.3f}, at "
                  f"{proxy['distill_flops']:.2e} distillation FLOPs against "
                  f"{direct['distill_flops']:.2e}")
        if start is not None and min(proxy["val_mse"], direct["val_mse"]) >= start:
            # Both kept step 0: the scores differ only by how far full data got within
            # each budget, which says nothing about the sets.
            lines.append(
                "- Neither set improves on the starting weights: the rule keeps step 0 for "
                "both, so the proxy's set is no worse than the direct one. Their scores "
                f"({scores}) differ only by how far full data had got within each budget.")
        else:
            verdict = ("as good as or better than" if proxy["score"] <= direct["score"]
                       else "worse than")
            lines.append(f"- The set distilled with the proxy is {verdict} the one distilled "
                         f"with the fine-tuned model: {scores} (one seed: a small gap may be "
                         "noise).")
    default = rows.get(DEFAULT_ARM)
    if default and default["score"] is not None and default["proxy_score"] is not None:
        taught = default["val_over_full_best"] / default["proxy_val_over_full_best"]
        lines.append(
            f"- The default set (`{DEFAULT_ARM}`) scores {default['score']:.3f} on the larger "
            f"model and {default['proxy_score']:.3f} on the proxy. Its best validation MSE "
            f"is {default['val_over_full_best']:.3f} times full data's best on the larger "
            f"model and {default['proxy_val_over_full_best']:.3f} times on the proxy: it "
            f"teaches the larger model {'less' if taught > 1 else 'as much or more'}, "
            "relative to full data; the rest of the score is how far full data had got "
            "within the same FLOPs.")
    return lines


def _markdown(rows: dict, summary: dict, records: list[dict]) -> str:
    lines = [
        "# What transfers from a small proxy to a larger model (validation only)", "",
        "Generated by `benchmarks/proxy_transfer.py` from its records; do not edit.", "",
        "Seed 0; the fine-tuning benchmark's selection rule without its test, as in the "
        "screen. Score: best validation MSE / full data's best validation MSE within the "
        "same total FLOPs (fine-tune + distillation, counted with the model that distilled); "
        "below 1 is ahead of full data at equal compute. 'steps' are the steps run (the "
        "rule's patience included, and counted in the FLOPs), 'best step' the one whose "
        "weights the rule kept (0: the starting weights). 'proxy' is the same candidate's "
        "score fine-tuning the proxy itself on the same sets in this run, against the "
        "proxy's own full data; 'small screen' is its score in the small screen "
        "(fm_screening), made with the screen's own stand-in.", "",
        f"Weights fine-tuned: {', '.join(f'`{w}`' for w in summary['weights']) or 'none yet'}"
        f"; the proxy: "
        f"{', '.join(f'`{w}`' for w in summary['proxy_weights']) or 'none yet'}"
        f"; sets for a model distilled with: "
        f"{', '.join(f'`{w}`' for w in summary['set_weights']) or 'none yet'}.", ""]
    for dataset, arms in rows.items():
        lines += [f"## {dataset}", "",
                  f"Starting weights' validation MSE: "
                  f"{cell(summary['start_val_mse'].get(dataset), '.4f')}.", "",
                  "| arm | what | set made with | lr | steps | best step | val MSE | "
                  "distillation FLOPs | total FLOPs | full val at equal FLOPs | score | proxy | "
                  "small screen |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for name, row in arms.items():
            made_with = (row["made_with"] if any(
                m.needs_model for m in BY_NAME[row["candidate"]].members) else "")
            lines.append(
                f"| {name} | {BY_ARM[name].note} | {made_with} | {row['learning_rate']:g} | "
                f"{row['steps']} | {cell(row['best_step'], 'd')} | {row['val_mse']:.4f} | "
                f"{row['distill_flops']:.2e} | "
                f"{row['total_flops']:.2e} | {cell(row['full_val_same_total_flops'], '.4f')} | "
                f"{cell(row['score'], '.3f')} | {cell(row['proxy_score'], '.3f')} | "
                f"{cell(row['small_screen_score'], '.3f')} |")
        lines += ["", *proxy_lines(arms, summary["start_val_mse"].get(dataset)), ""]
    lines.append(provenance_line(records))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    command, args = command_line(argv, {"run": RunArgs(), "report": ReportArgs()}, __doc__)
    if command == "run":
        run(args)
    else:
        report(BenchmarkPaths.of(args.smoke), SCREEN_SMOKE_RULE if args.smoke else SCREEN_RULE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
