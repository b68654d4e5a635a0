"""Plumbing shared by the benchmark programs: their command line (a command, then
`key=value` settings parsed by the one override parser into the command's typed
arguments), single-thread worker processes, distilling sets, evaluating them, and one JSON
record per result.

Records that exist are never recomputed, so a killed benchmark resumes where it stopped.
"""

from __future__ import annotations

import json
import multiprocessing
import sys
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
# Settings that make a distillation seconds long: smoke runs check a benchmark end to end.
SMOKE_DISTILL = ("iterations=4", "student_steps=2", "experts.n_experts=1",
                 "experts.snapshots=8", "experts.snapshot_steps=5")


@dataclass(frozen=True)
class BenchmarkPaths:
    """Where a benchmark keeps its records, reports and summaries (`results`) and its sets,
    corpora and runs (`work`, never committed). A smoke run (tiny sizes, to check a program
    end to end) keeps everything under runs/smoke/, never beside the committed records."""

    results: Path
    work: Path

    @classmethod
    def of(cls, smoke: bool) -> BenchmarkPaths:
        if smoke:
            return cls(results=ROOT.parent / "runs" / "smoke" / "results",
                       work=ROOT.parent / "runs" / "smoke")
        return cls(results=ROOT / "results", work=ROOT.parent / "runs")

    @property
    def sets(self) -> Path:
        return self.work / "benchmark_sets"


@dataclass(frozen=True)
class ReportArgs:
    smoke: bool = False  # the smoke run's records (runs/smoke/), not the committed ones


def command_line(argv: list[str] | None, commands: dict[str, Any], doc: str
                 ) -> tuple[str, Any]:
    """`COMMAND key=value ...`: the command and its typed arguments (`commands` maps each
    command to its arguments' default instance, or None when it takes none). An unknown
    command, key or value exits with one line naming it."""
    from hdt_finetune.typed_overrides import ConfigError, apply_overrides, config_keys

    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in commands:
        usage = "\n".join(
            f"  {name} " + " ".join(f"[{k}=...]" for k in config_keys(type(default)))
            if default is not None else f"  {name}" for name, default in commands.items())
        print(f"{doc.strip()}\n\ncommands:\n{usage}", file=sys.stderr)
        raise SystemExit(0 if argv and argv[0] in ("-h", "--help") else 2)
    command, default = argv[0], commands[argv[0]]
    try:
        if default is None:
            if argv[1:]:
                raise ConfigError(f"{command} takes no settings, got {' '.join(argv[1:])}")
            return command, None
        return command, apply_overrides(default, argv[1:])
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def guarded(job: dict) -> str:
    """Run one job; a failure is reported and the benchmark goes on with the other jobs."""
    try:
        return job["run"](job)
    except Exception as err:  # noqa: BLE001 - any failure of one job must not end the rest
        return f"FAILED {job.get('dataset')} {job.get('method')} {job.get('backbone', '')}: " \
               f"{type(err).__name__}: {err}"


def run_in_workers(function: Callable[[dict], str], jobs: list[dict], workers: int) -> None:
    """Each job in a fresh spawned process with one thread: on a small CPU, two single-thread
    workers beat one two-thread worker, and a fresh process gives an honest peak RSS."""
    print(f"{len(jobs)} jobs with {workers} worker(s)", flush=True)
    if not jobs:
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, maxtasksperchild=1) as pool:
        for line in pool.imap_unordered(guarded, [{**job, "run": function} for job in jobs]):
            print(line, flush=True)


def distil_job(job: dict) -> str:
    """Make the set `job["set"]` with `job["method"]` at its settings (`method_settings`;
    overrides in job["settings"]), distillation seed job["seed"] (0 if absent)."""
    import torch

    from hdt_finetune.data import DataSpec
    from hdt_finetune.distill.settings import DistillSettings, method_settings
    from hdt_finetune.distillation import DistillConfig, run_distillation
    from hdt_finetune.typed_overrides import apply_overrides

    torch.set_num_threads(1)
    overrides = job.get("settings", [])
    # A tuning search reads its configurations against the shared defaults, not a method's
    # tuned ones (which it chose).
    settings = (apply_overrides(DistillSettings(), overrides) if job.get("shared_defaults")
                else method_settings(job["method"], overrides))
    out = Path(job["set"])  # an older or damaged set of ours is replaced
    run_distillation(DistillConfig(data=DataSpec(job["dataset"]), method=job["method"],
                                   out=out, length=job["length"], seed=job.get("seed", 0),
                                   overwrite=out.exists(),
                                   settings=settings, show_progress=False))
    return f"distilled {job['set']}"


def evaluate_job(job: dict) -> str:
    """Evaluate the set `job["set"]` with one backbone over seeds; write `job["record"]`."""
    import torch

    from hdt_finetune.atomic_files import atomic_write_json
    from hdt_finetune.data import prepare_data
    from hdt_finetune.evaluation import TrainingRecipe, evaluate_backbone
    from hdt_finetune.provenance import git_commit, machine, package_versions, peak_rss_mb
    from hdt_finetune.synthetic import check_usable_with, read_synthetic_set

    torch.set_num_threads(1)
    data = prepare_data(job["dataset"])
    synthetic = read_synthetic_set(job["set"])
    check_usable_with(synthetic, data)
    recipe = TrainingRecipe()
    result = evaluate_backbone(synthetic.values, data, job["backbone"],
                               list(range(job["seeds"])), recipe, show_progress=False)
    manifest = synthetic.manifest
    atomic_write_json(job["record"], {
        "status": "ok",
        "dataset": job["dataset"],
        "method": job["method"],
        # A tuning search's name for the settings (benchmarks/baseline_tuning.py)
        **({"configuration": job["configuration"]} if "configuration" in job else {}),
        # A screened variant of a method (benchmarks/set_recipes.py), reported by its name
        **({"variant": job["variant"]} if "variant" in job else {}),
        "backbone": job["backbone"],
        "length": synthetic.values.shape[0],
        "set_sha256": synthetic.content_sha256,
        "distill_seed": manifest["seed"],
        "distill_settings": manifest["settings"],
        "distill_cost": manifest["cost"],
        "expert_buffer": manifest.get("method_info", {}).get("expert_buffer"),
        "recipe": asdict(recipe),
        **result.to_dict(),
        "peak_rss_mb": peak_rss_mb(),
        "threads": 1,
        # Evaluations at a time on this machine (distill_quality.py's workers)
        **({"concurrent_runs": job["concurrent_runs"]} if "concurrent_runs" in job else {}),
        "versions": package_versions(),
        "git": git_commit(),
        "machine": machine(),
    })
    return f"{job['dataset']} {job['method']} M={synthetic.values.shape[0]} " \
           f"{job['backbone']}: mse {result.mse_mean:.4f}"


def set_is_current(folder: Path) -> bool:
    """A set that reads and verifies with today's format. A missing, older or damaged one is
    distilled (again): never reused by a benchmark."""
    from hdt_finetune.synthetic import SyntheticSetError, read_synthetic_set

    try:
        read_synthetic_set(folder)
    except SyntheticSetError:
        return False
    return True


def plan(cells: Iterable[dict[str, Any]], backbones: list[str], seeds: int,
         record_path: Callable[[dict, str], Path]) -> tuple[list[dict], list[dict]]:
    """Split (dataset, method, length, set) cells into the distillations and evaluations
    still missing."""
    distils, evals = [], []
    for cell in cells:
        missing = [b for b in backbones if not record_path(cell, b).exists()]
        if missing and not set_is_current(Path(cell["set"])):
            distils.append(cell)
        evals += [{**cell, "backbone": b, "seeds": seeds, "record": str(record_path(cell, b))}
                  for b in missing]
    return distils, evals


def load_records(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def provenance_line(records: list[dict]) -> str:
    """Which commits made the records, and how many runs shared the machine (a record made
    before that was recorded is counted, never guessed)."""
    shas = sorted({(r.get("git") or {}).get("sha") or "unknown" for r in records})
    shared = sorted({r["concurrent_runs"] for r in records if "concurrent_runs" in r})
    unknown = sum("concurrent_runs" not in r for r in records)
    return (f"Records: {len(records)}, from commit(s) {', '.join(s[:7] for s in shas)}; "
            f"runs at a time: {shared or 'not recorded'}"
            + (f" ({unknown} records made before it was recorded)" if shared and unknown
               else "") + ", one thread each.")
