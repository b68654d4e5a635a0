"""The cost/accuracy report of the fine-tuning benchmark, generated from its JSON records only:
results/finetune_cost/report.md, report.html (self-contained: plots inlined), one Pareto
plot and one loss-curve plot per (dataset, model), and results/finetune_cost_summary.json.

    python benchmarks/finetune_cost.py report [smoke=true]
"""

from __future__ import annotations

import base64
import html
import json
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from benchmark_jobs import BenchmarkPaths
from default_arm_targets import Verdict, judge, margin_and_spread
from finetune_cost_arms import (
    BENCHMARK_RULE,
    DEFAULT_ARM,
    LABELS,
    MATCHED_ARMS,
    TRAINED_ARMS,
    ZERO_SHOT_ARMS,
)
from time_to_accuracy import (
    CurvePoint,
    curve_points,
    mse_against_compute,
    selected_test_mse,
    time_to_accuracy,
)

# Published Moirai zero-shot test MSE (96 -> 96), as quoted from the Moirai paper in uni2ts
# issue 237, where a user reproduced 0.415 on ETTh1: facts to compare a stand-in with.
PUBLISHED_ZERO_SHOT = {"moirai-small": {"ETTh1": 0.375, "ETTh2": 0.281}}
PLOT_KINDS = ("pareto", "curves", "compute")  # {kind}_{dataset}_{model}.png, ours alone
# The published claim (PROTOCOL.md) and our aims.
TARGETS = {"cost_reduction": (80.0, 100.0), "mse_increase_pct": (2.5, 2.0),
           "overall_speedup": (8.5, 10.0)}


@dataclass
class Arm:
    """The runs of one arm at its selected learning rate, and the grid that selected it."""

    name: str
    runs: list[dict]
    learning_rate: float | None
    grid: dict[float, float]  # learning rate -> best validation MSE at seed 0

    def mean(self, *path: str) -> float:
        return statistics.fmean(_get(r, path) for r in self.runs)

    def std(self, *path: str) -> float:
        values = [_get(r, path) for r in self.runs]
        return statistics.stdev(values) if len(values) > 1 else 0.0

    @property
    def distill_wall_s(self) -> float:
        cost = self.runs[0]["train_data"].get("distill_cost") or {}
        return float(cost.get("wall_s", 0.0))

    def curves(self) -> list[list[CurvePoint]] | None:
        """Each seed's validation points with their test probes; None for older records."""
        validated = [[row for row in r["curve"] if "val_mse" in row] for r in self.runs]
        if not all(rows and all("test_mse_probe" in row for row in rows) for rows in validated):
            return None
        return [curve_points(rows) for rows in validated]


def _get(record: dict, path: tuple[str, ...]) -> float:
    for key in path:
        record = record[key]
    return float(record)


def one_rule(records: list[dict]) -> tuple[list[dict], int]:
    """The records of one selection rule, never a mix: today's rule's if any record has it,
    else the most common one; and how many were left out."""
    def key(record: dict) -> str:
        return json.dumps(record.get("rule"), sort_keys=True)

    if not records:
        return [], 0
    keys = [key(r) for r in records]
    today = json.dumps(BENCHMARK_RULE.record(), sort_keys=True)
    chosen = today if today in keys else max(set(keys), key=keys.count)
    kept = [r for r, k in zip(records, keys, strict=True) if k == chosen]
    return kept, len(records) - len(kept)


def one_weights(records: list[dict]) -> tuple[list[dict], int]:
    """Per (dataset, model), the records of one set of weights, never a mix (a stand-in
    rebuilt since, say): the most common among the arms that load weights, plus the random-
    init reference; and how many were left out."""
    def weights(r: dict) -> tuple[str, str | None]:  # a folder's path and its contents
        return r["weights"], r.get("weights_sha256")

    by_key: dict = defaultdict(list)
    for r in records:
        if r["arm"] != "random_init":
            by_key[(r["dataset"], r["model"])].append(weights(r))
    chosen = {key: max(set(ws), key=ws.count) for key, ws in by_key.items()}
    kept = [r for r in records
            if r["arm"] == "random_init" or weights(r) == chosen[(r["dataset"], r["model"])]]
    return kept, len(records) - len(kept)


def load_arms(records: list[dict]) -> dict[tuple[str, str], dict[str, Arm]]:
    """(dataset, model) -> arm -> Arm. A trained arm's learning rate is the one with the
    lowest best-validation MSE among its seed-0 grid runs (the selection rule)."""
    grouped: dict = defaultdict(lambda: defaultdict(list))
    for r in records:
        grouped[(r["dataset"], r["model"])][r["arm"]].append(r)
    table: dict = {}
    for key, arms in grouped.items():
        table[key] = {}
        for name, runs in arms.items():
            if name in ZERO_SHOT_ARMS:
                table[key][name] = Arm(name, runs, None, {})
                continue
            grid = {r["learning_rate"]: r["best_val_mse"] for r in runs if r["seed"] == 0}
            if len(grid) < len(runs[0]["rule"]["learning_rates"]):
                continue  # selection not finished
            chosen = BENCHMARK_RULE.choose(grid)
            table[key][name] = Arm(name, [r for r in runs if r["learning_rate"] == chosen],
                                   chosen, grid)
    return table


def headline(arms: dict[str, Arm]) -> dict:
    """The summary of one (dataset, model): what the issue's headline file asks for, plus the
    variants the report explains (with validation time, FLOPs)."""
    out: dict = {"mse": {a: arms[a].mean("test", "mse") for a in arms}}
    zero = arms.get("zeroshot")
    if zero is not None and is_standin(zero.runs[0]["weights"]):
        out["standin_zeroshot_mse"] = zero.mean("test", "mse")
    if "full" in arms and "hdt" in arms:
        full, hdt = arms["full"], arms["hdt"]
        out.update(
            cost_reduction_wall=full.mean("cost", "train_s") / hdt.mean("cost", "train_s"),
            cost_reduction_wall_with_validation=(full.mean("cost", "wall_s")
                                                 / hdt.mean("cost", "wall_s")),
            cost_reduction_flops=full.mean("cost", "flops") / hdt.mean("cost", "flops"),
            mse_increase_pct=100 * (hdt.mean("test", "mse") / full.mean("test", "mse") - 1),
            overall_speedup=full.mean("cost", "train_s") / (hdt.distill_wall_s
                                                            + hdt.mean("cost", "train_s")),
            overall_speedup_with_validation=full.mean("cost", "wall_s") / (
                hdt.distill_wall_s + hdt.mean("cost", "wall_s")),
        )
        if "zeroshot" in arms:  # how much there was to gain: a set can only lose less
            out["zeroshot_mse_increase_pct"] = 100 * (arms["zeroshot"].mean("test", "mse")
                                                      / full.mean("test", "mse") - 1)
    equal = equal_compute(arms)
    if equal:
        out["equal_compute"] = equal
    probed = probed_equal_compute(arms)
    if probed:
        out["equal_compute_probed"] = probed
    reach = reaching_targets(arms)
    if reach:
        out["time_to_accuracy"] = reach
    return out


def is_standin(weights: str | None) -> bool:
    """A stand-in folder (finetune/standin_model.py), not a hub id or a random init."""
    return bool(weights) and weights != "random" and "-without-" in Path(weights).name


def curve_inputs(arms: dict[str, Arm]) -> dict[str, dict]:
    """Every trained arm whose runs carry test probes: its seeds' curves, FLOPs per step and
    distillation cost (0 for full data)."""
    inputs = {}
    for name in (*TRAINED_ARMS, *MATCHED_ARMS):
        arm = arms.get(name)
        seeds = arm.curves() if arm is not None else None
        if seeds is None:
            continue
        cost = arm.runs[0]["cost"]
        inputs[name] = {"seeds": seeds, "flops_per_step": cost["flops"] / cost["optimizer_steps"],
                        "distill_flops": float(arm.runs[0].get("distill_flops", 0.0)),
                        "distill_wall_s": arm.distill_wall_s}
    return inputs


def reaching_targets(arms: dict[str, Arm]) -> dict:
    """Time to accuracy (time_to_accuracy.py) for every trained arm, when full data's runs
    carry test probes: the targets sit above full data's selected model on the probed
    subset, and the starting weights are full data's step 0."""
    full = arms.get("full")
    curves = full.curves() if full is not None else None
    if curves is None or curves[0][0].step != 0:
        return {}
    selected = statistics.fmean(selected_test_mse(c)[-1] for c in curves)
    return time_to_accuracy(selected, curves[0][0].test_mse, curve_inputs(arms))


def equal_compute(arms: dict[str, Arm]) -> dict:
    """Each set arm beside full data trained for its budget: its fine-tuning steps, and those
    plus its distillation's FLOPs (the headline, `full_mse_same_total_flops`)."""
    table = {}
    for set_arm in sorted({arm for arm, _ in MATCHED_ARMS.values()}):
        matched = {kind: arms.get(name) for name, (arm, kind) in MATCHED_ARMS.items()
                   if arm == set_arm}
        if set_arm not in arms or any(m is None for m in matched.values()):
            continue
        budgets = {json.dumps(r["budget"], sort_keys=True) for r in matched["total"].runs}
        if len(budgets) != 1:
            continue  # runs of different budgets (a set arm rerun since): not comparable
        budget = matched["total"].runs[0]["budget"]
        train_flops = arms[set_arm].mean("cost", "flops")
        table[set_arm] = {
            "mse": arms[set_arm].mean("test", "mse"),
            "full_mse_same_train_flops": matched["train"].mean("test", "mse"),
            "full_mse_same_total_flops": matched["total"].mean("test", "mse"),
            "train_flops": train_flops,
            "total_flops": train_flops + budget["distill_flops"],
            "full_steps_same_total_flops": budget["steps"],
            # Early stopping applies to the matched arms too: they may run short of the budget.
            "full_steps_ran_same_total_flops": matched["total"].mean("steps"),
            # The same conversion at equal wall time: the distillation's seconds in full-data
            # training steps (one thread each; the distillation ran alone, the fine-tunes as
            # many at a time as their records say).
            "full_steps_same_total_wall": budget["set_steps"] + budget["distill_wall_s"] / (
                arms["full"].mean("cost", "train_s") / arms["full"].mean("steps"))
            if "full" in arms else None,
        }
    return table


def probed_equal_compute(arms: dict[str, Arm]) -> dict:
    """Equal compute for each set arm that has no matched full-data runs (Random), read off
    the probed test subset: its selected model's test MSE against that of the model full
    data had selected by the same total FLOPs (its last validation point at or under them),
    each seed's and their mean. Full data's curve is at the learning rate it chose for its
    own length, which a smaller budget might not choose: a curve reading, not a matched
    run."""
    inputs = curve_inputs(arms)
    full = inputs.get("full")
    if full is None:
        return {}
    by_step = [dict(zip((p.step for p in points), selected_test_mse(points), strict=True))
               for points in full["seeds"]]
    has_matched_runs = {set_arm for set_arm, _ in MATCHED_ARMS.values()}
    table = {}
    for name, arm in inputs.items():
        if name == "full" or name in MATCHED_ARMS or name in has_matched_runs:
            continue
        total = arm["distill_flops"] + arms[name].mean("cost", "flops")
        steps = [step for step in set.intersection(*(set(s) for s in by_step))
                 if step * full["flops_per_step"] <= total]
        if not steps:
            continue
        ours = [selected_test_mse(points)[-1] for points in arm["seeds"]]
        theirs = [seed[max(steps)] for seed in by_step]
        table[name] = {
            "mse_probed": statistics.fmean(ours),
            "full_mse_probed_same_total_flops": statistics.fmean(theirs),
            "full_steps_same_total_flops": max(steps), "total_flops": total,
            # The targets' rule for a win: a margin beyond the larger std over seeds.
            "spread": max(statistics.stdev(v) if len(v) > 1 else 0.0 for v in (ours, theirs))}
    return table


def report(paths: BenchmarkPaths) -> None:
    from hdt_finetune.atomic_files import atomic_write_json, atomic_write_text

    results = paths.results / "finetune_cost"
    summary_path = paths.results / "finetune_cost_summary.json"
    records, left_out = one_rule(
        [json.loads(p.read_text()) for p in sorted((results / "records").glob("*.json"))])
    if left_out:
        print(f"left out {left_out} record(s) made under another selection rule")
    records, left_out = one_weights(records)
    if left_out:
        print(f"left out {left_out} record(s) made with other weights")
    table = load_arms(records)
    summary: dict = defaultdict(dict)
    sections, figures = [], []
    for (dataset, model), arms in sorted(table.items()):
        head = headline(arms)
        # The weights every arm starts from (the random-init reference aside).
        first = next((arm.runs[0] for name, arm in arms.items() if name != "random_init"),
                     None)
        weights = first["weights"] if first else None
        sha = first.get("weights_sha256") if first else None
        summary[dataset][model] = {"weights": weights, "weights_sha256": sha, **head}
        # A folder keeps its path when pretrained again: its checksum tells them apart.
        weights = f"{weights} (sha256 {sha[:10]})" if sha else weights
        sections.append(_section(dataset, model, weights, arms, head))
        figures += [_pareto_plot(results, dataset, model, arms),
                    _curve_plot(results, dataset, model, arms),
                    _compute_plot(results, dataset, model, arms)]
    figures = [f for f in figures if f]
    # A plot of ours that these records no longer make (an older run's dataset, say) would
    # sit beside the report as if it came from them.
    for stale in {p.resolve() for kind in PLOT_KINDS for p in results.glob(f"{kind}_*.png")} - {
            f.resolve() for f in figures}:
        stale.unlink()
    context = _context(records)
    # Issue 17's targets, judged on Moirai-small (the model every dataset ran).
    small = {dataset: arms for (dataset, model), arms in table.items()
             if model == "moirai-small"}
    reach = {dataset: models["moirai-small"].get("time_to_accuracy", {})
             for dataset, models in summary.items() if "moirai-small" in models}
    verdicts = judge(small, reach, DEFAULT_ARM)
    markdown = _markdown(sections, figures, context, verdicts)
    results.mkdir(parents=True, exist_ok=True)
    atomic_write_text(results / "report.md", markdown)
    atomic_write_text(results / "report.html", _html(sections, figures, context, verdicts))
    atomic_write_json(summary_path, summary)
    atomic_write_json(results / "targets.json", {
        "arm": DEFAULT_ARM, "model": "moirai-small",
        "verdicts": [v.__dict__ for v in verdicts]})
    print(f"wrote {results / 'report.md'}, report.html and {summary_path}")


# --- tables --------------------------------------------------------------------------------

COLUMNS = ["arm", "lr", "seeds", "test MSE", "test MAE", "test CRPS", "steps", "train s",
           "with validation s", "FLOPs", "distil s", "cost reduction (train s / FLOPs)"]


def _section(dataset: str, model: str, weights: str | None, arms: dict[str, Arm],
             head: dict) -> dict:
    rows = []
    full = arms.get("full")
    for name in (*ZERO_SHOT_ARMS, *TRAINED_ARMS, *MATCHED_ARMS):
        arm = arms.get(name)
        if arm is None:
            continue
        trained = name not in ZERO_SHOT_ARMS
        crps = (f"{arm.mean('test', 'crps'):.4f}" if "crps" in arm.runs[0]["test"] else "")
        reduction = ""
        if trained and full is not None and name != "full":
            reduction = (f"{full.mean('cost', 'train_s') / arm.mean('cost', 'train_s'):.1f}x"
                         f" / {full.mean('cost', 'flops') / arm.mean('cost', 'flops'):.1f}x")
        rows.append([
            LABELS[name], f"{arm.learning_rate:g}" if trained else "",
            str(len(arm.runs)),
            f"{arm.mean('test', 'mse'):.4f} ± {arm.std('test', 'mse'):.4f}",
            f"{arm.mean('test', 'mae'):.4f}", crps,
            f"{arm.mean('steps'):.0f}" if trained else "0",
            f"{arm.mean('cost', 'train_s'):.0f}" if trained else "",
            f"{arm.mean('cost', 'wall_s'):.0f}" if trained else "",
            f"{arm.mean('cost', 'flops'):.2e}" if trained else "",
            # Every set arm with a recorded cost (the default included; Random's is
            # the second or less its subset takes to draw).
            f"{arm.distill_wall_s:.0f}" if arm.distill_wall_s else "",
            reduction,
        ])
    grid = [[LABELS[name], *(f"{lr:g}: {mse:.4f}" for lr, mse in sorted(arm.grid.items())),
             f"{arm.learning_rate:g}"] for name, arm in arms.items() if arm.grid]
    # Runs sharing the machine slow each other; their wall times say so.
    sharing = sorted({r.get("concurrent_runs", 1) for arm in arms.values() for r in arm.runs})
    return {"title": f"{dataset}, {model}", "weights": weights, "rows": rows, "grid": grid,
            "head": head, "targets": _target_lines(arms, head),
            "compute": _compute_lines(head, arms),
            "sharing": "runs at a time (one thread each): " + ", ".join(map(str, sharing))}


def _target_lines(arms: dict[str, Arm], head: dict) -> list[str]:
    lines = []
    if "cost_reduction_wall" in head:
        for key, label, value in (
                ("cost_reduction", "cost reduction, training wall time",
                 head["cost_reduction_wall"]),
                ("cost_reduction", "cost reduction, FLOPs", head["cost_reduction_flops"]),
                ("overall_speedup", "overall speed-up incl. distillation",
                 head["overall_speedup"])):
            need, aim = TARGETS[key]
            verdict = "met" if value >= need else f"missed by {need - value:.1f}x"
            lines.append(f"{label}: {value:.1f}x (target >= {need:g}x, aim {aim:g}x): "
                         f"{verdict}")
        need, aim = TARGETS["mse_increase_pct"]
        value = head["mse_increase_pct"]
        verdict = "met" if value <= need else f"missed by {value - need:.1f} points"
        baseline = (f"; zero-shot's: {head['zeroshot_mse_increase_pct']:+.1f}%"
                    if "zeroshot_mse_increase_pct" in head else "")
        lines.append(f"MSE increase of HDT over full data: {value:+.1f}% (target <= {need:g}%, "
                     f"aim {aim:g}%): {verdict}{baseline}")
    hdt = arms.get("hdt")
    if hdt is not None:
        for other in ("random", "condtsf", "zeroshot"):
            if other in arms:
                a, b = hdt.mean("test", "mse"), arms[other].mean("test", "mse")
                # With 2-3 seeds a gap smaller than either arm's spread is not a ranking.
                spread = max(hdt.std("test", "mse"), arms[other].std("test", "mse"))
                noise = (f" (within the seeds' spread, std {spread:.4f})"
                         if abs(a - b) < spread else "")
                lines.append(f"HDT {'beats' if a < b else 'does not beat'} {LABELS[other]}: "
                             f"{a:.4f} vs {b:.4f}{noise}")
    zero, rand = arms.get("zeroshot"), arms.get("random_init")
    if zero is not None and rand is not None:
        lines.append(f"the weights' zero-shot MSE {zero.mean('test', 'mse'):.4f} vs a "
                     f"random-init model's {rand.mean('test', 'mse'):.4f}")
    if "standin_zeroshot_mse" in head:
        lines.append(_standin_line(head["standin_zeroshot_mse"], zero.runs[0]))
    return lines


def _standin_line(mse: float, record: dict) -> str:
    """The stand-in beside the published weights, and what a gap means for the report."""
    published = PUBLISHED_ZERO_SHOT.get(record["model"], {}).get(record["dataset"])
    # Which stand-in: one pretrained again elsewhere has other weights (and another record).
    sha = record.get("weights_sha256")
    name = f"the stand-in's (weights {sha[:10]})" if sha else "the stand-in's"
    if published is None:
        return (f"{name} zero-shot MSE is {mse:.4f}; no published zero-shot MSE to "
                f"compare it with for {record['model']} on {record['dataset']}")
    worse = mse > 1.1 * published
    return (f"{name} zero-shot MSE {mse:.4f} against the published "
            f"{record['model']}'s {published:.3f} (Moirai paper, as quoted in uni2ts issue 237"
            f"{'; 0.415 reproduced there' if record['dataset'] == 'ETTh1' else ''}; its "
            f"context was longer than our 96)" + (
                ": clearly worse, so fine-tuning gains here overstate what fine-tuning the "
                "published weights would gain" if worse else ""))


def _context(records: list[dict]) -> dict:
    if not records:
        return {}
    last = records[-1]  # every record comes from the same rule
    # A run resumed on a new machine has two; wall times compare within a dataset only.
    machines: dict[str, set[str]] = {}
    for r in records:
        machines.setdefault(json.dumps(r["machine"], sort_keys=True), set()).add(r["dataset"])
    return {"machines": [{**json.loads(m), "datasets": sorted(d)} for m, d in
                         sorted(machines.items())],
            "versions": last["versions"],
            "commits": sorted({f"{r['git'].get('sha') or '?'}"
                               f"{'' if r['git'].get('clean') else ' (uncommitted changes)'}"
                               for r in records}),
            "rule": last["rule"]}


def _compute_lines(head: dict, arms: dict[str, Arm]) -> list[str]:
    """Equal compute and time to accuracy, where the records carry them (markdown). Each
    arm's column says how many seeds it holds: one still running has fewer."""
    lines = []
    for arm, row in head.get("equal_compute", {}).items():
        verdict = "beats" if row["mse"] < row["full_mse_same_total_flops"] else "does not beat"
        full, caveat = arms.get(f"full_at_{arm}_total"), ""
        if verdict == "beats" and full is not None:  # the targets' rule: beyond the spread
            gap, spread = margin_and_spread(arms[arm], full)
            if gap <= spread:
                caveat = (f" Within the seeds' spread (margin {gap:.4f}, std {spread:.4f}): "
                          "not a win.")
        budget, ran = row["full_steps_same_total_flops"], row["full_steps_ran_same_total_flops"]
        steps = (f"{budget} full-data steps" if round(ran) == budget else
                 f"a budget of {budget} full-data steps, {ran:.0f} run on average: early "
                 "stopping ended some seeds sooner")
        wall = row["full_steps_same_total_wall"]
        at_wall = "" if wall is None else f"; at equal total wall time a budget of {wall:.0f}"
        lines.append(
            f"- At equal total FLOPs (distillation included) the {LABELS[arm]} {verdict} full "
            f"data: {row['mse']:.4f} against {row['full_mse_same_total_flops']:.4f} "
            f"({steps}{at_wall}; at equal fine-tuning steps full data reaches "
            f"{row['full_mse_same_train_flops']:.4f}).{caveat}")
    for arm, row in head.get("equal_compute_probed", {}).items():
        gap = row["full_mse_probed_same_total_flops"] - row["mse_probed"]
        verdict = ("beats" if gap > row["spread"] else
                   "is lower than, within the seeds' spread (not a win)," if gap > 0 else
                   "does not beat")
        lines.append(
            f"- The {LABELS[arm]} has no full-data run matched to its budget. On the probed "
            f"test subset it {verdict} the model full data had selected by the same total "
            f"FLOPs: {row['mse_probed']:.4f} against "
            f"{row['full_mse_probed_same_total_flops']:.4f} (std {row['spread']:.4f}; step "
            f"{row['full_steps_same_total_flops']} of full data's own run, at the learning "
            "rate and schedule chosen for its full length).")
    reach = head.get("time_to_accuracy")
    if reach:
        names = [a for a in reach[next(iter(reach))] if a not in ("target_mse",
                                                                 "met_by_starting_weights")]
        lines += ["", "Time to accuracy: total FLOPs / wall s, distillation included, until "
                  "the model each arm would select first reaches the target (full data's "
                  "selected test MSE on the probed subset + the margin); never = some seed "
                  "never did.", "", "| target | " + " | ".join(
                      f"{LABELS[a]} ({len(arms[a].runs)} seeds)" for a in names) + " |",
                  "|---|" + "---|" * len(names)]
        for margin, row in reach.items():
            cells = ["never" if row[a]["total_flops"] is None else
                     f"{row[a]['total_flops']:.2e} / {row[a]['total_wall_s']:.0f}"
                     for a in names]
            start = " (met by the starting weights)" if row["met_by_starting_weights"] else ""
            lines.append(f"| +{margin}%: {row['target_mse']:.4f}{start} | "
                         + " | ".join(cells) + " |")
    return [*lines, ""] if lines else []


def _verdict_lines(verdicts: list[Verdict]) -> list[str]:
    return [f"- **{v.target}: {v.status}.** {v.detail}" for v in verdicts]


def _markdown(sections: list[dict], figures: list[Path], context: dict,
              verdicts: list[Verdict]) -> str:
    lines = ["# Fine-tuning cost and accuracy (generated from records/, do not edit)", "",
             _INTRO, "", f"## Targets of the default distilled arm (`{DEFAULT_ARM}`, "
             "Moirai-small; benchmarks/default_arm_targets.py)", "",
             *_verdict_lines(verdicts), ""]
    for s in sections:
        lines += [f"## {s['title']}", "", f"Weights: `{s['weights']}`; {s['sharing']}", "",
                  "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(row) + " |" for row in s["rows"]]
        lines += ["", "Learning-rate selection (best validation MSE at seed 0, chosen last):",
                  ""]
        lines += [f"- {row[0]}: {', '.join(row[1:-1])} -> {row[-1]}" for row in s["grid"]]
        lines += ["", "Targets:", ""] + [f"- {t}" for t in s["targets"]] + [""]
        lines += s["compute"]
    lines += [f"![{f.stem}]({f.name})" for f in figures]
    lines += ["", "## Machine and packages", "", "```",
              json.dumps(context, indent=2, sort_keys=True), "```", ""]
    return "\n".join(lines)


def _html(sections: list[dict], figures: list[Path], context: dict,
          verdicts: list[Verdict]) -> str:
    judged = "".join(f"<li><b>{html.escape(v.target)}: {html.escape(v.status)}.</b> "
                     f"{html.escape(v.detail)}</li>" for v in verdicts)
    body = [f"<h1>Fine-tuning cost and accuracy</h1><p>{html.escape(_INTRO)}</p>"
            f"<h2>Targets of the default distilled arm ({html.escape(DEFAULT_ARM)}, "
            f"Moirai-small)</h2><ul>{judged}</ul>"]
    for s in sections:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
        rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                       for row in s["rows"])
        grid = "".join(f"<li>{html.escape(row[0])}: {html.escape(', '.join(row[1:-1]))} "
                       f"&rarr; {html.escape(row[-1])}</li>" for row in s["grid"])
        targets = "".join(f"<li>{html.escape(t)}</li>" for t in s["targets"])
        body.append(f"<h2>{html.escape(s['title'])}</h2><p>Weights: "
                    f"<code>{html.escape(str(s['weights']))}</code>; "
                    f"{html.escape(s['sharing'])}</p>"
                    f"<table><tr>{head}</tr>{rows}</table>"
                    f"<p>Learning-rate selection (validation, seed 0):</p><ul>{grid}</ul>"
                    f"<p>Targets:</p><ul>{targets}</ul>")
        if s["compute"]:
            body.append("<pre>" + html.escape("\n".join(s["compute"])) + "</pre>")
    for figure in figures:
        data = base64.b64encode(figure.read_bytes()).decode()
        body.append(f'<p><img alt="{figure.stem}" src="data:image/png;base64,{data}"></p>')
    body.append("<h2>Machine and packages</h2><pre>"
                + html.escape(json.dumps(context, indent=2, sort_keys=True)) + "</pre>")
    style = ("body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:"
             "collapse}td,th{border:1px solid #bbb;padding:3px 6px;font-size:90%}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Fine-tuning cost"
            f"</title><style>{style}</style></head><body>{''.join(body)}</body></html>\n")


_INTRO = (
    "Test MSE/MAE/CRPS on every window of the real test split (scaled, 96 -> 96, channel-"
    "independent), mean ± std over seeds at the learning rate each arm selected on the "
    "validation split. 'train s' is the wall time of the training steps (the FLOPs' "
    "counterpart), 'with validation s' adds the early-stopping validations; the test "
    "evaluation is in neither. Cost reduction is full data / arm; overall speed-up adds the "
    "distillation (expert buffer included) to the HDT arm. One thread per run on this CPU. "
    "The matched full-data runs have the set arm's budget at equal FLOPs; the budget at equal "
    "total wall time beside it turns the distillation's wall seconds into full-data steps at "
    "full data's training seconds per step, both on one thread: the distillation alone, the "
    "fine-tunes as many at a time as each dataset's weights line says (sharing the machine "
    "slows a step, so this budget leans low)."
)


# --- plots ---------------------------------------------------------------------------------

def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _log_x(axis) -> None:
    """A log x axis labelled 1, 2, 5, 10, ..., 500, 1k, 2k: matplotlib's default labels
    every minor tick as 3x10^1, 4x10^1, ..., which overlap on a short range."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_xscale("log")
    axis.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    axis.xaxis.set_major_formatter(FuncFormatter(
        lambda value, _: f"{value / 1000:g}k" if value >= 1000 else f"{value:g}"))
    axis.xaxis.set_minor_formatter(NullFormatter())


def _pareto_plot(results: Path, dataset: str, model: str, arms: dict[str, Arm]) -> Path | None:
    """Test MSE against training wall time, each run and each arm's mean; the Pareto front
    joins the arms no cheaper arm beats; zero-shot (no training cost) is a line."""
    trained = [a for a in TRAINED_ARMS if a in arms]
    if not trained:
        return None
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7, 4.5))
    points = []
    for name in trained:
        arm = arms[name]
        xs = [r["cost"]["train_s"] for r in arm.runs]
        ys = [r["test"]["mse"] for r in arm.runs]
        (line,) = axis.plot(xs, ys, "o", alpha=0.35)
        mean = (arm.mean("cost", "train_s"), arm.mean("test", "mse"))
        axis.plot(*mean, "o", markersize=10, color=line.get_color(), label=LABELS[name])
        points.append(mean)
    front, best = [], float("inf")
    for x, y in sorted(points):
        if y < best:
            front.append((x, y))
            best = y
    axis.step(*zip(*front, strict=True), where="post", color="black", linewidth=1,
              label="Pareto front")
    for name, style in (("zeroshot", "--"), ("random_init", ":")):
        if name in arms:
            axis.axhline(arms[name].mean("test", "mse"), linestyle=style, color="grey",
                         label=LABELS[name])
    _log_x(axis)
    return _finish(figure, axis, "fine-tuning wall time of the training steps, s (log)",
                   "test MSE", f"{dataset}, {model}: accuracy against cost",
                   _plot_path(results, "pareto", dataset, model))


def _plot_path(results: Path, kind: str, dataset: str, model: str) -> Path:
    """The one place a plot's name is made, so stale-plot cleanup matches every plot."""
    if kind not in PLOT_KINDS:
        raise ValueError(f"plot kind {kind!r} is not one of {PLOT_KINDS}")
    return results / f"{kind}_{dataset}_{model}.png"


def _finish(figure, axis, xlabel: str, ylabel: str, title: str, path: Path,
            legend_size: int = 8) -> Path:
    """Label a one-axis figure, save it and free it."""
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.legend(fontsize=legend_size)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    _pyplot().close(figure)
    return path


def _compute_plot(results: Path, dataset: str, model: str,
                  arms: dict[str, Arm]) -> Path | None:
    """Test MSE (probed subset) of the model each arm would select against its total FLOPs,
    distillation included: the mean over seeds at each shared validation point (step 0 of a
    set arm sits at its distillation's FLOPs; full data's step 0 is off the log axis and
    drawn as the starting weights' line)."""
    inputs = curve_inputs(arms)
    if not inputs:
        return None
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for name, arm in inputs.items():
        points = [(x, y) for x, y in mse_against_compute(arm["seeds"], arm["flops_per_step"],
                                                         arm["distill_flops"]) if x > 0]
        if points:
            style = "--" if name in MATCHED_ARMS else "-"
            axis.plot(*zip(*points, strict=True), style, marker=".", label=LABELS[name])
    start = inputs.get("full", next(iter(inputs.values())))["seeds"][0][0]
    if start.step == 0:  # the starting weights on the same probed test subset
        axis.axhline(start.test_mse, linestyle=":", color="grey",
                     label="starting weights (zero-shot)")
    axis.set_xscale("log")
    return _finish(figure, axis, "total FLOPs: distillation + fine-tuning steps (log)",
                   "test MSE of the selected model (probed test subset)",
                   f"{dataset}, {model}: accuracy against total compute",
                   _plot_path(results, "compute", dataset, model), legend_size=7)


def _curve_plot(results: Path, dataset: str, model: str, arms: dict[str, Arm]) -> Path | None:
    """Training loss and validation MSE against step, seed 0 of each arm's chosen rate."""
    trained = [a for a in TRAINED_ARMS if a in arms]
    if not trained:
        return None
    plt = _pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for name in trained:
        run = next((r for r in arms[name].runs if r["seed"] == 0), arms[name].runs[0])
        trained_rows = [row for row in run["curve"] if "train_loss" in row]  # not step 0
        steps = [row["step"] for row in trained_rows]
        losses = [row["train_loss"] for row in trained_rows]
        window = max(1, len(losses) // 50)  # a running mean: single batches are noisy
        smooth = [statistics.fmean(losses[max(0, i - window + 1): i + 1])
                  for i in range(len(losses))]
        left.plot(steps, smooth, label=LABELS[name])
        val = [(row["step"], row["val_mse"]) for row in run["curve"]
               if "val_mse" in row and row["step"] > 0]
        if val:
            line, = right.plot(*zip(*val, strict=True), marker=".", label=LABELS[name])
            start = [row["val_mse"] for row in run["curve"] if row["step"] == 0]
            if start:  # the starting weights: step 0 has no place on a log axis
                right.axhline(start[0], linestyle=":", linewidth=0.8, color=line.get_color())
    for axis, label in ((left, "training loss (NLL, running mean)"),
                        (right, "validation MSE")):
        _log_x(axis)
        axis.set_xlabel("optimizer step (log)")
        axis.set_ylabel(label)
        axis.legend(fontsize=8)
    figure.suptitle(f"{dataset}, {model}: seed 0 at the selected learning rate")
    figure.tight_layout()
    path = _plot_path(results, "curves", dataset, model)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


if __name__ == "__main__":
    report(BenchmarkPaths.of(smoke=False))
