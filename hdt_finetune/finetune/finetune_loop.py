"""The fine-tuning loop, written out with Accelerate.

The same code runs on one CPU, one GPU or many processes (`accelerate launch`): `prepare`,
gradient accumulation, clipping, AdamW with warm-up and cosine decay, mixed precision where
the device has it, early stopping on the real validation split, `save_state` checkpoints to
`checkpoints/step_N/` and `skip_first_batches` on resume. Only the main process writes files.
"""

from __future__ import annotations

import json
import logging
import math
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm

from hdt_finetune.atomic_files import (
    atomic_directory,
    atomic_write_json,
    atomic_write_text,
    fsync_path,
)
from hdt_finetune.data.prepared_data import PreparedData, prepare_data
from hdt_finetune.finetune.cost_meter import CostMeter
from hdt_finetune.finetune.finetune_config import FinetuneConfig
from hdt_finetune.finetune.finetune_data import FinetuneData, load_finetune_data
from hdt_finetune.finetune.finetune_modes import apply_mode, export_module, train_mode
from hdt_finetune.finetune.forecast_adapter import ForecastAdapter, build_adapter
from hdt_finetune.finetune.run_folder import claimed_run_folder
from hdt_finetune.finetune.training_checkpoint import (
    finalize_checkpoint,
    resumable_checkpoint,
)
from hdt_finetune.provenance import Stopwatch, git_commit, machine, package_versions
from hdt_finetune.run_identity import fingerprint

log = logging.getLogger(__name__)


class EpochShuffle(Sampler[int]):
    """A new permutation each epoch from (seed, epoch) alone, so a resumed run draws the same
    batches as an uninterrupted one."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=generator).tolist())

    def __len__(self) -> int:
        return self.n


def warmup_cosine(warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return factor


class FinetuneDivergedError(RuntimeError):
    """The training loss or the validation error stopped being a finite number."""


def run_finetune(config: FinetuneConfig, data: PreparedData | None = None) -> dict[str, Any]:
    """Fine-tune as `config` says (on `data`, its dataset already prepared, if given) and
    test; returns the record also written to `out/record.json`."""
    from accelerate import Accelerator

    precision = config.mixed_precision
    if precision == "auto":
        precision = "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() \
            else "no"
    trackers = [t for t in config.trackers.split(",") if t]
    accelerator = Accelerator(gradient_accumulation_steps=config.grad_accum,
                              mixed_precision=precision, log_with=trackers or None,
                              project_dir=str(config.out))
    data = data or prepare_data(config.dataset, config.context_length)
    windows = load_finetune_data(config.train_data, data, config.context_length,
                                 config.horizon, config.val_stride, config.test_stride,
                                 config.curve_test_stride)
    settings = run_settings(config, windows, data, accelerator.num_processes, precision)
    run_key = fingerprint(settings)
    claim = (claimed_run_folder(config.out, run_key, settings, config.overwrite)
             if accelerator.is_main_process else nullcontext())
    with claim:
        accelerator.wait_for_everyone()
        return _train_and_test(config, accelerator, windows, run_key, trackers)


def _train_and_test(config: FinetuneConfig, accelerator, data: FinetuneData, run_key: str,
                    trackers: list[str]) -> dict[str, Any]:
    from accelerate import skip_first_batches
    from accelerate.utils import set_seed

    set_seed(config.seed)
    adapter = build_adapter(config.model, config.context_length, config.horizon, config.seed)
    model = apply_mode(adapter, config.mode, config.lora_rank, config.lora_alpha,
                       config.lora_dropout)
    sampler = EpochShuffle(len(data.train), config.seed)
    # Its own generator: creating an iterator (as a resume does mid-epoch) must not draw from
    # the global RNG, which dropout and forecast sampling use. Full batches when every
    # process can have one; else the processes share the short ones.
    loader = DataLoader(data.train, batch_size=config.batch_size, sampler=sampler,
                        drop_last=len(data.train) >= config.batch_size * accelerator.num_processes,
                        generator=torch.Generator().manual_seed(config.seed))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                  lr=config.learning_rate, weight_decay=config.weight_decay)
    # The schedule counts optimizer steps, so it is stepped here once per optimizer step, not
    # prepared: Accelerate steps a prepared scheduler once per process at every step.
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(config.warmup_steps, config.max_steps))
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    accelerator.register_for_checkpointing(scheduler)
    meter = CostMeter(
        n_parameters=sum(p.numel() for p in model.parameters()),
        n_trainable=sum(p.numel() for p in model.parameters() if p.requires_grad),
        tokens_per_window=adapter.tokens_per_window(),
        windows_per_step=config.batch_size * config.grad_accum * accelerator.num_processes,
        processes=accelerator.num_processes, weights=adapter.weights)
    out = Path(config.out)
    position = {"step": 0, "epoch": 0, "batches_in_epoch": 0, "batches_seen": 0,
                "best_val": None, "stale": 0}
    found = resumable_checkpoint(out / "checkpoints", run_key)
    if found is not None:
        resume, state = found
        accelerator.load_state(str(resume))
        position = state["position"]
        meter.restore(state["meter"])
        log.info("resumed from %s at step %d", resume, position["step"])
    metrics_path = out / "metrics.jsonl"
    if accelerator.is_main_process:  # a fresh start drops the lines of a killed first try
        _truncate_metrics(metrics_path, position["step"] if found is not None else -1)
    if trackers:
        accelerator.init_trackers("hdt_finetune", config=config.settings())
    if found is None and config.validates_at(0):  # the starting weights are a candidate
        row = {"step": 0, "wall_s": meter.elapsed()}
        _validate(row, adapter, model, data, config, accelerator, meter, position, out)
        _log(accelerator, metrics_path, row, trackers)
    bar = tqdm(total=config.max_steps, initial=position["step"], desc="fine-tune",
               disable=not accelerator.is_local_main_process)
    # A finished run (its last step, or early-stopped) resumed from its final checkpoint
    # trains no further: it only tests and writes again.
    stop = position["step"] >= config.max_steps or position["stale"] >= config.patience
    while not stop:
        loader.set_epoch(position["epoch"])
        batches = (skip_first_batches(loader, position["batches_in_epoch"])
                   if position["batches_in_epoch"] else loader)
        batches_before = position["batches_seen"]
        for context, target in batches:
            train_mode(model)
            with accelerator.accumulate(model):
                loss = adapter.loss(model, context, target)
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad()
            if accelerator.sync_gradients:
                scheduler.step()
            position["batches_in_epoch"] += 1
            position["batches_seen"] += 1
            if not accelerator.sync_gradients:
                continue
            position["step"] += 1
            meter.step()
            bar.update()
            row = {"step": position["step"], "train_loss": accelerator.gather(
                loss.detach().float()).mean().item(), "lr": scheduler.get_last_lr()[0],
                "wall_s": meter.elapsed()}
            _check_finite(row["train_loss"], "training loss", position["step"], config)
            if config.validates_at(position["step"]):
                stop = _validate(row, adapter, model, data, config, accelerator, meter,
                                 position, out)
            bar.set_postfix(loss=f"{row['train_loss']:.4f}")
            _log(accelerator, metrics_path, row, trackers)
            done = stop or position["step"] >= config.max_steps
            if position["step"] % config.save_every == 0 or done:
                _checkpoint(accelerator, out, position, meter, run_key)
            if done:
                stop = True
                break
        else:
            if position["batches_seen"] == batches_before:
                raise ValueError(f"the training set gives no batch: {len(data.train)} windows "
                                 f"for batch_size {config.batch_size}; lower batch_size")
            position["epoch"] += 1
            position["batches_in_epoch"] = 0
    bar.close()
    return _finish(config, adapter, model, data, accelerator, meter, position, out)


def _validate(row: dict, adapter: ForecastAdapter, model, data: FinetuneData,
              config: FinetuneConfig, accelerator, meter: CostMeter, position: dict,
              out: Path) -> bool:
    """Validate (and probe the test subset, if asked) into `row`; keep the best weights.
    Returns whether early stopping ends the run."""
    clock = Stopwatch()
    row["val_mse"] = _errors(adapter, model, data.val, config, accelerator)["mse"]
    _check_finite(row["val_mse"], "validation MSE", position["step"], config)
    meter.add_eval(clock.seconds())
    if data.probe is not None:
        clock = Stopwatch()
        row["test_mse_probe"] = _errors(adapter, model, data.probe, config, accelerator)["mse"]
        meter.add_probe(clock.seconds())
    stop = _early_stopping(position, row["val_mse"], config.patience)
    if position["stale"] == 0:
        _save_best(accelerator, model, out)
    return stop


def weights_checksum(config: FinetuneConfig) -> str:
    """The checksum of a weights folder's contents ("" for a hub id or a random init): a
    stand-in rebuilt on another machine has the same path and other bits."""
    from hdt_finetune.checksums import sha256_of_tree

    source = config.model.source
    return (sha256_of_tree(Path(source)) if source and Path(source).is_dir() and
            config.model.init == "pretrained" else "")


def run_settings(config: FinetuneConfig, windows: FinetuneData, data: PreparedData,
                 processes: int, precision: str) -> dict[str, str]:
    """What a run's result depends on, as its out= folder and checkpoints record it: the
    config's result-shaping settings, the contents of the training windows and of the
    validation/test data, the weights folder's contents, and what the machine decides (the
    process count sets the global batch; `mixed_precision=auto` resolves to a precision)."""
    settings = config.result_settings()
    del settings["train_data"], settings["mixed_precision"]  # their contents/resolution below
    if config.mode != "lora":
        for key in ("lora_rank", "lora_alpha", "lora_dropout"):
            del settings[key]
    return {**settings, "train_data_sha256": json.dumps(windows.source["content_sha256"]),
            "dataset_sha256": data.sha256, "weights_sha256": weights_checksum(config),
            "processes": str(processes), "precision": precision}


def _check_finite(value: float, what: str, step: int, config: FinetuneConfig) -> None:
    if not math.isfinite(value) and step == 0:  # nothing trained yet: the start is at fault
        raise FinetuneDivergedError(
            f"the starting weights give a {what} of {value} before any training step: check "
            f"the weights ({config.model.source or config.model.init}) and the validation "
            f"data of {config.dataset}")
    if not math.isfinite(value):
        raise FinetuneDivergedError(
            f"the fine-tune diverged at step {step}: the {what} is {value}. Lower "
            f"learning_rate (now {config.learning_rate:g}) or max_grad_norm, or check the "
            "training data")


def _early_stopping(position: dict, val_mse: float, patience: int) -> bool:
    if position["best_val"] is None or val_mse < position["best_val"]:
        position["best_val"], position["stale"] = val_mse, 0
        return False
    position["stale"] += 1
    return position["stale"] >= patience


def _save_best(accelerator, model: torch.nn.Module, out: Path) -> None:
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        state = {k: v.detach().cpu().contiguous()
                 for k, v in accelerator.unwrap_model(model).state_dict().items()}
        tmp = out / ".best_model.safetensors.tmp"
        save_file(state, str(tmp))
        fsync_path(tmp)
        tmp.replace(out / "best_model.safetensors")
        fsync_path(out)


def _checkpoint(accelerator, out: Path, position: dict, meter: CostMeter,
                run_key: str) -> None:
    final = out / "checkpoints" / f"step_{position['step']}"
    tmp = final.with_name(f".{final.name}.tmp")
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        finalize_checkpoint(tmp, final, {"fingerprint": run_key, "position": position,
                                         "meter": meter.state()})
    accelerator.wait_for_everyone()


def _log(accelerator, path: Path, row: dict, trackers: list[str]) -> None:
    if trackers:
        accelerator.log(row, step=row["step"])
    if accelerator.is_main_process:
        with path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")


def _truncate_metrics(path: Path, step: int) -> None:
    """On resume, drop lines written after the checkpoint we resume from, and a last line
    torn by a kill."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line)
        except (ValueError, KeyError, TypeError):
            log.warning("%s: dropped an unreadable line (a kill while writing it)", path)
    atomic_write_text(path, "".join(line + "\n" for line in kept))


@torch.no_grad()
def _errors(adapter: ForecastAdapter, model: torch.nn.Module,
            windows: tuple[torch.Tensor, torch.Tensor], config: FinetuneConfig,
            accelerator, with_crps: bool = False) -> dict[str, float]:
    """MSE, MAE (and CRPS from samples) over the windows, each process taking every n-th.
    A probabilistic model's samples come from the random state seeded afresh for each pass
    and put back after it: an evaluation depends on the weights alone (not on whether test
    probes ran before it), and training's random stream never depends on evaluations."""
    model.eval()
    x_all, y_all = windows
    rank, world = accelerator.process_index, accelerator.num_processes
    totals = torch.zeros(4, dtype=torch.float64, device=accelerator.device)
    cuda = [accelerator.device.index or 0] if accelerator.device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(config.seed + rank)
        for start in range(rank * config.batch_size, x_all.shape[0], world * config.batch_size):
            x = x_all[start : start + config.batch_size].to(accelerator.device)
            y = y_all[start : start + config.batch_size].to(accelerator.device)
            # With CRPS, the point forecast is the median of the same samples: one pass.
            samples = (adapter.sample_forecast(model, x, config.num_samples) if with_crps
                       else None)
            point = (adapter.point_forecast(model, x) if samples is None
                     else samples.median(0).values)
            error = point.float() - y
            totals[0] += error.pow(2).sum()
            totals[1] += error.abs().sum()
            totals[3] += y.numel()
            if samples is not None:
                totals[2] += sample_crps(samples.float(), y).sum()
    totals = accelerator.reduce(totals, reduction="sum")
    count = totals[3].item()
    result = {"mse": totals[0].item() / count, "mae": totals[1].item() / count}
    if with_crps and adapter.probabilistic:
        result["crps"] = totals[2].item() / count
    return result


def sample_crps(samples: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CRPS of each target element under the empirical distribution of `samples`
    ([S, ...] against [...]): E|X - y| - E|X - X'| / 2, the latter from sorted samples."""
    n = samples.shape[0]
    spread_to_target = (samples - target).abs().mean(0)
    ordered = samples.sort(dim=0).values
    weights = (2 * torch.arange(1, n + 1, device=samples.device) - n - 1).to(samples.dtype)
    pairwise = (weights.view(-1, *[1] * (samples.dim() - 1)) * ordered).sum(0) * 2 / n**2
    return spread_to_target - pairwise / 2


def _finish(config: FinetuneConfig, adapter: ForecastAdapter, model, data: FinetuneData,
            accelerator, meter: CostMeter, position: dict, out: Path) -> dict[str, Any]:
    accelerator.wait_for_everyone()
    cost = meter.to_dict()  # the fine-tune's cost; the test evaluation below is not in it
    unwrapped = accelerator.unwrap_model(model)
    if position["best_val"] is not None:  # this run validated, and kept its best weights
        unwrapped.load_state_dict(load_file(str(out / "best_model.safetensors")))
    test = (None if data.test is None
            else _errors(adapter, model, data.test, config, accelerator, with_crps=True))
    # Evidence that every process trained: the batches each one consumed since (re)start.
    batches = accelerator.gather(torch.tensor([position["batches_seen"]],
                                              device=accelerator.device)).tolist()
    record = {
        "status": "ok",
        "model": adapter.name,
        "weights": adapter.weights,
        "weights_sha256": weights_checksum(config),
        "model_init": "random" if adapter.weights == "random-init" else "pretrained",
        "mode": config.mode,
        "dataset": config.dataset,
        "train_data": data.source,  # with the content checksum of what it trained on
        "best_val_mse": position["best_val"],
        "steps": position["step"],
        "batches_per_process": batches,
        "test": test,
        "cost": cost,
        "config": config.settings(),
        "versions": package_versions(),
        "git": git_commit(),
        "machine": machine(),
    }
    if accelerator.is_main_process:
        if config.mode == "lora":
            with atomic_directory(out / "lora_adapter", overwrite=True) as tmp:
                unwrapped.save_pretrained(str(tmp))
        with atomic_directory(out / "model", overwrite=True) as tmp:
            adapter.save_pretrained(export_module(unwrapped, config.mode), tmp)
        atomic_write_json(out / "record.json", record)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return record
