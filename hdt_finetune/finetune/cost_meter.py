"""What a fine-tuning run cost: time, steps, samples, tokens, FLOPs, memory, processes."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from hdt_finetune.provenance import Stopwatch, peak_rss_mb


@dataclass
class CostMeter:
    """Counts for the whole run (all processes), from the optimiser steps taken.

    FLOPs are an analytic estimate: a forward pass costs 2 x parameters x tokens; the backward
    pass costs the same again for activation gradients plus 2 x trainable parameters x tokens
    for weight gradients; so a full fine-tune is the usual 6 x N x tokens and a frozen or LoRA
    fine-tune (4 N + 2 N_trainable) x tokens. Evaluation passes are not counted.

    Wall time: `wall_s` is the whole fine-tune, validation for early stopping included;
    `eval_s` is the validation part, so `train_s` = wall_s - eval_s is the time spent in
    training steps, the counterpart of the FLOPs. The final test evaluation is in neither, nor
    are the test-subset probes of a learning curve (`probe_s`): they measure the run, they are
    not part of its method.
    """

    n_parameters: int
    n_trainable: int
    tokens_per_window: int
    windows_per_step: int  # batch x gradient accumulation x processes
    processes: int
    weights: str
    optimizer_steps: int = 0
    wall_s_before_resume: float = 0.0
    eval_s: float = 0.0
    probe_s: float = 0.0
    probe_s_at_resume: float = 0.0  # the part of probe_s already out of wall_s_before_resume
    clock: Stopwatch = field(default_factory=Stopwatch)

    def step(self) -> None:
        self.optimizer_steps += 1

    def add_eval(self, seconds: float) -> None:
        self.eval_s += seconds

    def add_probe(self, seconds: float) -> None:
        self.probe_s += seconds

    def elapsed(self) -> float:
        """The fine-tune's wall time so far, probes left out."""
        return (self.wall_s_before_resume + self.clock.seconds()
                - (self.probe_s - self.probe_s_at_resume))

    @property
    def samples(self) -> int:
        return self.optimizer_steps * self.windows_per_step

    @property
    def tokens(self) -> int:
        return self.samples * self.tokens_per_window

    @property
    def flops(self) -> float:
        per_token = 4 * self.n_parameters + 2 * self.n_trainable
        return float(per_token) * self.tokens

    def to_dict(self) -> dict:
        cuda = (torch.cuda.max_memory_allocated() / 2**20
                if torch.cuda.is_available() else None)
        wall_s = self.elapsed()
        return {
            "wall_s": wall_s,
            "eval_s": self.eval_s,
            "probe_s": self.probe_s,
            "train_s": wall_s - self.eval_s,
            "optimizer_steps": self.optimizer_steps,
            "samples": self.samples,
            "tokens": self.tokens,
            "flops": self.flops,
            "peak_rss_mb": peak_rss_mb(),
            "cuda_max_allocated_mb": cuda,
            "processes": self.processes,
            "weights": self.weights,
            "n_parameters": self.n_parameters,
            "n_trainable": self.n_trainable,
        }

    def state(self) -> dict:
        """What a checkpoint keeps so a resumed run's totals include the time before the kill."""
        return {"optimizer_steps": self.optimizer_steps, "eval_s": self.eval_s,
                "probe_s": self.probe_s, "wall_s": self.elapsed()}

    def restore(self, state: dict) -> None:
        self.optimizer_steps = int(state["optimizer_steps"])
        self.wall_s_before_resume = float(state["wall_s"])  # probes already left out
        self.eval_s = float(state["eval_s"])
        self.probe_s = self.probe_s_at_resume = float(state.get("probe_s", 0.0))
        self.clock = Stopwatch()

