"""Fine-tuning throughput of Moirai-small on this machine, and our loop's overhead.

    python benchmarks/finetune_throughput.py run [steps=30] [size=small] [threads=2]
    python benchmarks/finetune_throughput.py run smoke=true   # seconds: tiny Moirai, runs/smoke/

Runs the Accelerate loop (`run_finetune`, no evaluation or checkpoint inside the timed steps)
and a bare forward/backward/AdamW loop over the same batches, and writes
results/finetune_throughput.json. Random-init weights: throughput does not depend on them.
Steps after the first three are timed (the first ones warm up allocators and caches).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass

import torch
from benchmark_jobs import BenchmarkPaths, command_line

WARMUP = 3


@dataclass(frozen=True)
class RunArgs:
    steps: int = 30
    size: str = "small"
    threads: int = torch.get_num_threads()
    smoke: bool = False  # a tiny Moirai for 6 steps, the record under runs/smoke/


def bare_loop(config, steps: int) -> float:
    """Seconds per step of the plainest loop over the same batches as the trainer."""
    from hdt_finetune.data import prepare_data
    from hdt_finetune.finetune.finetune_data import load_finetune_data
    from hdt_finetune.finetune.finetune_loop import EpochShuffle
    from hdt_finetune.finetune.forecast_adapter import build_adapter

    torch.manual_seed(config.seed)
    adapter = build_adapter(config.model, config.context_length, config.horizon, config.seed)
    data = load_finetune_data(config.train_data, prepare_data(config.dataset),
                              config.context_length, config.horizon)
    loader = torch.utils.data.DataLoader(data.train, batch_size=config.batch_size,
                                         sampler=EpochShuffle(len(data.train), config.seed),
                                         drop_last=True)
    optimizer = torch.optim.AdamW(adapter.module.parameters(), lr=config.learning_rate)
    adapter.module.train()
    times = []
    for step, (context, target) in enumerate(loader):
        if step == steps:
            break
        start = time.perf_counter()
        loss = adapter.loss(adapter.module, context, target)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - start)
    return sum(times[WARMUP:]) / len(times[WARMUP:])


def our_loop(config) -> float:
    from hdt_finetune.finetune.finetune_loop import run_finetune

    run_finetune(config)
    rows = [json.loads(line) for line in (config.out / "metrics.jsonl").read_text().splitlines()]
    timed = rows[WARMUP - 1 : config.max_steps - 1]  # the last step also evaluates
    return (timed[-1]["wall_s"] - timed[0]["wall_s"]) / (len(timed) - 1)


def main(argv: list[str] | None = None) -> int:
    from hdt_finetune.atomic_files import atomic_write_json
    from hdt_finetune.finetune.finetune_config import FinetuneConfig
    from hdt_finetune.provenance import git_commit, machine, package_versions, peak_rss_mb

    _, args = command_line(argv, {"run": RunArgs()}, __doc__)
    results = BenchmarkPaths.of(args.smoke).results
    if args.smoke:
        args = RunArgs(steps=6, size="tiny", threads=args.threads, smoke=True)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        config = FinetuneConfig.from_overrides([
            "model.family=moirai", f"model.size={args.size}", "model.init=random",
            f"max_steps={args.steps}", f"eval_every={args.steps}", f"save_every={args.steps}",
            "val_stride=400", "test_stride=400", "num_samples=5", "warmup_steps=0",
            f"out={tmp}/run"])
        ours = our_loop(config)
        bare = bare_loop(config, args.steps)
    record = {
        "model": f"moirai-{args.size}", "weights": "random-init",
        "batch_size": config.batch_size, "context_length": config.context_length,
        "horizon": config.horizon, "patch_size": config.model.patch_size, "threads": args.threads,
        "timed_steps": args.steps - WARMUP,
        "loop_s_per_step": ours, "bare_s_per_step": bare,
        "loop_samples_per_s": config.batch_size / ours,
        "bare_samples_per_s": config.batch_size / bare,
        "overhead_pct": 100 * (ours - bare) / bare,
        # Other jobs on the machine slow both loops alike; the load says how busy it was.
        "load_average_1m": os.getloadavg()[0],
        "peak_rss_mb": peak_rss_mb(), "versions": package_versions(), "git": git_commit(),
        "machine": machine(),
    }
    atomic_write_json(results / "finetune_throughput.json", record)
    print(json.dumps({k: record[k] for k in ("loop_samples_per_s", "bare_samples_per_s",
                                             "overhead_pct")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
