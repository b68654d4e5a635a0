"""The distillation-speed summary and report, generated from the records of
`distill_speed.py` (never edited by hand)."""

from __future__ import annotations

import json

from benchmark_jobs import BenchmarkPaths, load_records

TARGET_HDT_ETTH1_S = 30.0  # HDT on ETTh1, M = 384, expert buffer included
TARGET_FLOOR_RATIO = 3.0  # MTT, CondTSF, HDT and hdt_freq within 3x of floor_s


def analytic_flops(record: dict, source: dict) -> tuple[float, float]:
    """FLOPs of the reference algorithm and of DLinear's fast path at the record's settings,
    on its dataset."""
    from hdt_finetune.distill.distill_flops import fast_path_flops, reference_flops
    from hdt_finetune.distill.settings import DistillSettings
    from hdt_finetune.typed_overrides import apply_overrides

    settings = apply_overrides(DistillSettings(), list(record["settings"]))
    first, last = source["rows"]
    shape = (record["method"], settings, record["length"], len(source["columns"]), last - first)
    return reference_flops(*shape).total, fast_path_flops(*shape).total


def summary(records: list[dict]) -> dict:
    sources = {r["dataset"]: r["source"] for r in records if "source" in r}
    before = {(r["method"], r["dataset"]): r for r in records if r["label"] == "before"}
    table: dict = {}
    for r in sorted((r for r in records if r["label"] == "after"),
                    key=lambda r: (r["method"], r["dataset"])):
        flops, fast_flops = analytic_flops(r, sources[r["dataset"]])
        floor_s = flops / (r["matmul_gflops"] * 1e9)
        fast_floor_s = fast_flops / (r["matmul_gflops"] * 1e9)
        old = before.get((r["method"], r["dataset"]))
        table.setdefault(r["method"], {})[r["dataset"]] = {
            "wall_s": round(r["wall_s"], 2),
            "experts_wall_s": round(r["experts_wall_s"], 2),
            "flops": flops,
            "floor_s": round(floor_s, 2),
            "wall_s_before": None if old is None else round(old["wall_s"], 2),
            "threads": r["threads"],
            "wall_over_floor": round(r["wall_s"] / floor_s, 2),
            # What the code that ran does: the closed form's own FLOPs and floor.
            "fast_path_flops": fast_flops,
            "fast_path_floor_s": round(fast_floor_s, 2),
            "wall_over_fast_path_floor": round(r["wall_s"] / fast_floor_s, 2),
            "speedup": None if old is None else round(old["wall_s"] / r["wall_s"], 2),
            "matmul_gflops": round(r["matmul_gflops"], 1),
            "set_sha256": r["set_sha256"],
            "git": r["git"]["sha"],
        }
    return table


def profile_table(profile: dict) -> list[str]:
    phases = profile["phases_s"]
    lines = [f"### {profile['label']} (git {profile['git']['sha'][:7]}, "
             f"{profile['threads']} threads): {phases['total_wall_s']:.1f} s", "",
             "| phase | own wall s | share |", "|---|---:|---:|"]
    total = phases["total_wall_s"]
    for name, seconds in sorted(phases.items(), key=lambda kv: -kv[1]):
        if name != "total_wall_s":
            lines.append(f"| {name} | {seconds:.2f} | {seconds / total:.0%} |")
    lines += ["", "| by kind | matching iterations | expert steps |", "|---|---:|---:|"]
    matching, experts = profile["matching_by_kind"], profile["experts_by_kind"]
    for kind in ("kernels_s", "autograd_s", "python_and_glue_s", "wall_s"):
        lines.append(f"| {kind.removesuffix('_s')} | {matching[kind]:.3f} | "
                     f"{experts[kind]:.3f} |")
    lines += ["", f"(torch.profiler over {matching['iterations']} matching iterations and "
              f"{experts['steps']} steps of one expert, after the timed run; profiler "
              "overhead included.)", ""]
    return lines


def quality_table(records: list[dict]) -> tuple[list[str], dict]:
    """Test MSE (mean over training seeds) per distillation seed, before and after; the
    change keeps quality when the means differ by no more than the larger spread (max - min)
    over distillation seeds. The same seeds make both sets, so the per-seed change is shown
    too: a far more sensitive check than the rule."""
    import statistics

    cells: dict = {}
    for r in sorted(records, key=lambda r: r["distill_seed"]):
        key = (r["dataset"], r["method"], r["backbone"])
        cells.setdefault(key, {}).setdefault(r["label"], []).append(r["mse_mean"])
    lines = ["| dataset | method | backbone | before (per seed) | after (per seed) | "
             "difference | larger spread | largest change of one seed | kept |",
             "|---|---|---|---|---|---:|---:|---:|---|"]
    verdicts = {}
    for (dataset, method, backbone), by_label in sorted(cells.items()):
        if set(by_label) != {"before", "after"}:
            continue
        before, after = by_label["before"], by_label["after"]
        difference = statistics.mean(after) - statistics.mean(before)
        spread = max(max(before) - min(before), max(after) - min(after))
        kept = abs(difference) <= spread
        verdicts[f"{dataset}/{method}/{backbone}"] = kept
        lines.append(f"| {dataset} | {method} | {backbone} | "
                     f"{' '.join(f'{v:.4f}' for v in before)} | "
                     f"{' '.join(f'{v:.4f}' for v in after)} | {difference:+.4f} | "
                     f"{spread:.4f} | "
                     f"{max(abs(a - b) for a, b in zip(after, before, strict=True)):.4f} | "
                     f"{'yes' if kept else 'NO'} |")
    return lines, verdicts


def report(paths: BenchmarkPaths) -> None:
    from hdt_finetune.atomic_files import atomic_write_json, atomic_write_text

    folder = paths.results / "distill_speed"
    records = load_records(folder / "records")
    if not records:
        print(f"no records in {folder / 'records'}")
        return
    table = summary(records)
    atomic_write_json(paths.results / "distill_speed_summary.json", table)
    lines = ["# Distillation speed", "",
             "Generated by `python benchmarks/distill_speed.py report` from "
             "`distill_speed/records/`. M = 384, today's default settings, each run in a "
             "fresh process with an empty expert cache, one at a time, nothing else running. "
             "`floor_s`: the analytic FLOPs of the reference algorithm "
             "(`hdt_finetune/distill/distill_flops.py`) / the measured throughput of a "
             "2048 x 2048 float32 matmul at the same thread count. The fast path does fewer "
             "FLOPs than the reference algorithm; its own floor (`fast_path_floor_s`, the same "
             "count for the closed form) says how close the code that ran is to the machine.",
             "", "| method | dataset | wall s | experts s | before s | speed-up | floor s | "
             "wall / floor | fast-path floor s | wall / fast-path floor |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for method, datasets in table.items():
        for dataset, row in datasets.items():
            lines.append(f"| {method} | {dataset} | {row['wall_s']:.1f} | "
                         f"{row['experts_wall_s']:.1f} | {row['wall_s_before'] or '-'} | "
                         f"{row['speedup'] or '-'} | {row['floor_s']:.1f} | "
                         f"{row['wall_over_floor']:.2f} | {row['fast_path_floor_s']:.1f} | "
                         f"{row['wall_over_fast_path_floor']:.2f} |")
    hdt = table.get("hdt", {}).get("ETTh1")
    if hdt is not None:
        rows = [row for m in ("mtt", "condtsf", "hdt", "hdt_freq") if m in table
                for row in table[m].values()]
        within = all(row["wall_over_floor"] <= TARGET_FLOOR_RATIO for row in rows)
        within_own = all(row["wall_over_fast_path_floor"] <= TARGET_FLOOR_RATIO for row in rows)
        lines += ["", "## Targets", "",
                  f"- HDT on ETTh1 <= {TARGET_HDT_ETTH1_S:.0f} s, expert buffer included: "
                  f"{hdt['wall_s']:.1f} s, "
                  f"{'met' if hdt['wall_s'] <= TARGET_HDT_ETTH1_S else 'missed'}.",
                  f"- Every trajectory method within {TARGET_FLOOR_RATIO:.0f}x of floor_s: "
                  f"{'met' if within else 'missed'}; within {TARGET_FLOOR_RATIO:.0f}x of the "
                  f"fast path's own floor (the stricter reading): "
                  f"{'met' if within_own else 'missed'} (worst "
                  f"{max(r['wall_over_fast_path_floor'] for r in rows):.2f}x)."]
    threads = sorted((r for r in records if r["method"] == "hdt" and r["dataset"] == "ETTh1"),
                     key=lambda r: (r["label"].startswith("after"), r["threads"]))
    lines += ["", "## Thread count (HDT on ETTh1)", "", "| code | threads | wall s | experts s "
              "| matmul GFLOP/s |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {r['label'].split('_')[0]} ({r['git']['sha'][:7]}) | {r['threads']} | "
              f"{r['wall_s']:.1f} | {r['experts_wall_s']:.1f} | {r['matmul_gflops']:.0f} |"
              for r in threads]
    quality = load_records(folder / "quality")
    if quality:
        rows, verdicts = quality_table(quality)
        lines += ["", "## Quality before and after", "",
                  "Test MSE on each dataset's test split; each entry is one distillation seed's "
                  "set, averaged over its training seeds.", "", *rows, "",
                  f"Quality kept in {sum(verdicts.values())} of {len(verdicts)} cells."]
    profiles = [json.loads(p.read_text()) for p in sorted(folder.glob("profile_*.json"))]
    if profiles:
        lines += ["", "## Where one HDT distillation on ETTh1 spends its time", ""]
        for profile in sorted(profiles, key=lambda p: p["label"] != "before"):
            lines += profile_table(profile)
    notes = folder / "notes.md"
    if notes.exists():
        lines += ["", notes.read_text().strip()]
    atomic_write_text(folder / "report.md", "\n".join(lines) + "\n")
    print(f"wrote {folder / 'report.md'} and {paths.results / 'distill_speed_summary.json'}")
