"""Trajectory-matching distillation: MTT, CondTSF, HDT and HDT's ablations in one loop.

Per iteration (PROTOCOL.md): draw an expert and a start epoch t; run `student_steps` SGD steps
of DLinear from the expert's epoch-t parameters on windows of the synthetic series; the loss is
the student's distance to the expert's epoch t+i parameters, normalised by how far the expert
itself moved. HDT learns the series' rFFT coefficients, trains the student on the synthetic
signal filtered to the top-k harmonics of a sampled real subsequence, and adds the amplitude
loss on those harmonics. All randomness comes from one seeded generator, so a run, and a
run resumed from a checkpoint, give the same bits on the CPU.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from hdt_finetune.atomic_files import fsync_path
from hdt_finetune.backbones import DLinear, DLinearConfig
from hdt_finetune.distill.expert_buffer import ExpertBuffer, load_or_train_experts
from hdt_finetune.distill.flat_params import FlatModel, normalise_windows, windows_of
from hdt_finetune.distill.outcome import DistillOutcome, MethodInputs
from hdt_finetune.distill.settings import (
    SWITCHES,
    DistillSettings,
    MethodSwitches,
    student_lr_start,
)
from hdt_finetune.distill.spectral import (
    harmonic_filter,
    harmonic_loss,
    to_series,
    to_spectrum,
    top_k_mask,
)
from hdt_finetune.provenance import Stopwatch

log = logging.getLogger(__name__)

CHECKPOINT = "distill_state.pt"


class CheckpointError(RuntimeError):
    """A distillation checkpoint is corrupt or belongs to another run."""


class DistillationDivergedError(RuntimeError):
    """The matching loss stopped being a finite number."""


def run_trajectory_distillation(method: str, inputs: MethodInputs) -> DistillOutcome:
    train, length, seed, settings = inputs.train, inputs.length, inputs.seed, inputs.settings
    source_id, expert_cache = inputs.source_id, inputs.expert_cache
    checkpoint_dir, show_progress = inputs.checkpoint_dir, inputs.show_progress
    switches = SWITCHES[method]
    real = torch.as_tensor(np.asarray(train, dtype=np.float32))
    if length < settings.context_length + settings.horizon:
        raise ValueError(
            f"length {length} is shorter than one window ({settings.context_length} + "
            f"{settings.horizon}); trajectory matching needs at least one"
        )
    buffer = _experts(switches, real, length, seed, settings, source_id, expert_cache,
                      show_progress)
    clock = Stopwatch()
    state = _DistillState.start(switches, real, length, seed, settings)
    fingerprint = _fingerprint(method, length, seed, settings, source_id)
    if checkpoint_dir is not None:
        state.resume_from(checkpoint_dir / CHECKPOINT, fingerprint)
    student = FlatModel(DLinear(DLinearConfig(settings.context_length, settings.horizon,
                                              real.shape[1])))
    checkpoint = None if checkpoint_dir is None else checkpoint_dir / CHECKPOINT
    history = iterate(state, real, buffer, student, checkpoint, fingerprint,
                      f"distill {method}", show_progress)
    values = state.series().detach().numpy().astype(np.float32)
    info = {
        "switches": dataclasses.asdict(switches),
        "expert_buffer": None if buffer is None else {
            "key": buffer.key, "cached": buffer.cached, "wall_s": buffer.wall_s,
            "shape": list(buffer.trajectories.shape)},
        "student_lr": float(state.log_lr.detach().exp()),
        "loss_curve": history,  # this run's iterations (after a resume: from there on)
        "loop_wall_s": clock.seconds(),
    }
    return DistillOutcome(values=values, info=info)


def iterate(state: _DistillState, real: torch.Tensor | SubsequencePool,
            buffer: ExpertBuffer | None, student: FlatModel, checkpoint: Path | None,
            fingerprint: str, desc: str, show_progress: bool) -> list[dict[str, float]]:
    """Run the remaining iterations with a progress bar of the loss terms, checkpointing every
    `checkpoint_every` iterations and at the end; returns the loss terms of each."""
    settings = state.settings
    history: list[dict[str, float]] = []
    bar = tqdm(total=settings.iterations, initial=state.iteration, desc=desc,
               disable=not show_progress)
    while state.iteration < settings.iterations:
        terms = state.step(real, buffer, student)
        history.append(terms)
        bar.set_postfix({k: f"{v:.4f}" for k, v in terms.items()})
        bar.update()
        if checkpoint is not None and (state.iteration % settings.checkpoint_every == 0
                                       or state.iteration == settings.iterations):
            state.save(checkpoint, fingerprint)
    bar.close()
    return history


def _experts(
    switches: MethodSwitches,
    real: torch.Tensor,
    length: int,
    seed: int,
    settings: DistillSettings,
    source_id: dict,
    cache: Path,
    show_progress: bool,
) -> ExpertBuffer | None:
    if not (switches.trajectory_matching or switches.value_term):
        return None
    experts = settings.experts
    if switches.harmonics and settings.filter_experts:  # experts on harmonic-filtered data
        experts = dataclasses.replace(experts, filter_segment=length, filter_k=settings.top_k)
    backbone = DLinearConfig(settings.context_length, settings.horizon, real.shape[1])
    return load_or_train_experts(real, backbone, experts, seed, source_id, cache, show_progress)


def _fingerprint(method: str, length: int, seed: int, settings: DistillSettings,
                 source_id: dict) -> str:
    payload = {"method": method, "length": length, "seed": seed, "source": source_id,
               "settings": dataclasses.asdict(settings)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


class _DistillState:
    """The learnable synthetic series, the student learning rate, their optimisers and the
    random generator: everything a checkpoint must hold to resume bit for bit."""

    def __init__(self, switches: MethodSwitches, settings: DistillSettings, length: int,
                 param: torch.Tensor, generator: torch.Generator, student_lr: float,
                 bin_scale: torch.Tensor | None = None) -> None:
        self.switches, self.settings, self.length = switches, settings, length
        # Frequency parameterisation: spectrum = param * bin_scale, so Adam's step on a bin is
        # spectrum_lr * bin_scale. With a step alike for every bin, the level and the main
        # periods of a series hardly moved (a bin's step spreads over all M points), while
        # bins the data does not use filled with noise; HDT lost to MTT on ETTm2.
        self.bin_scale = bin_scale
        self.param = torch.nn.Parameter(param)
        self.log_lr = torch.nn.Parameter(torch.tensor(math.log(student_lr)))
        self.data_optimizer = torch.optim.Adam(
            [self.param], lr=settings.data_lr if bin_scale is None else settings.spectrum_lr)
        self.lr_optimizer = torch.optim.Adam([self.log_lr], lr=settings.student_lr_lr)
        self.generator = generator
        self.iteration = 0
        # Data-parallel distillation: averages the gradients across processes in place.
        self.reduce: Callable[[list[torch.Tensor]], None] | None = None

    @classmethod
    def start(cls, switches: MethodSwitches, real: torch.Tensor, length: int, seed: int,
              settings: DistillSettings) -> _DistillState:
        generator = torch.Generator().manual_seed(seed)
        init = initial_series(real, length, settings.init, generator, settings.top_k)
        bin_scale = None
        if switches.parameterisation == "frequency":
            bin_scale = real_bin_scale(real, length, seed)
            param = torch.view_as_real(to_spectrum(init) / bin_scale).clone()
        else:
            param = init.clone()
        return cls(switches, settings, length, param, generator, student_lr_start(settings),
                   bin_scale)

    def spectrum(self) -> torch.Tensor:
        if self.switches.parameterisation == "frequency":
            return torch.view_as_complex(self.param) * self.bin_scale
        return to_spectrum(self.param)

    def series(self) -> torch.Tensor:
        if self.switches.parameterisation == "frequency":
            return to_series(self.spectrum(), self.length)
        return self.param

    def step(self, real: torch.Tensor, buffer: ExpertBuffer | None,
             student: FlatModel) -> dict[str, float]:
        s = self.settings
        terms: dict[str, float] = {}
        loss = torch.zeros(())
        if self.switches.harmonics:
            real_spectrum = to_spectrum(real_subsequences(real, self.length, self.generator))
            mask = top_k_mask(real_spectrum, s.top_k)
            spectrum = self.spectrum()
            harm = harmonic_loss(real_spectrum, spectrum, mask, s.harmonic_p)
            signal = to_series(spectrum * mask, self.length)
            weight = s.harmonic_weight if self.switches.trajectory_matching else 1.0
            loss = loss + weight * harm
            terms["harm"] = float(harm.detach())
        else:
            signal = self.series()
        if self.switches.trajectory_matching:
            grad_loss = self._trajectory_loss(signal, buffer, student)
            loss = loss + grad_loss
            terms["grad"] = float(grad_loss.detach())
        if not torch.isfinite(loss):
            raise DistillationDivergedError(
                f"the distillation diverged at iteration {self.iteration} (loss terms {terms}); "
                f"the student learning rate was {float(self.log_lr.detach().exp()):.3g}. Lower "
                "student_lr_init, data_lr or spectrum_lr with --set"
            )
        self.data_optimizer.zero_grad(set_to_none=True)
        self.lr_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.reduce is not None:
            self.reduce([self.param.grad, *([self.log_lr.grad] if self.switches.
                                             trajectory_matching else [])])
        self.data_optimizer.step()
        if self.switches.trajectory_matching:
            self.lr_optimizer.step()
        self.iteration += 1
        if self.switches.value_term and self.iteration % s.value_every == 0:
            self._value_term(buffer, student)
        return terms

    def _trajectory_loss(self, signal: torch.Tensor, buffer: ExpertBuffer,
                         student: FlatModel) -> torch.Tensor:
        s = self.settings
        n_experts = buffer.trajectories.shape[0]
        expert = int(torch.randint(0, n_experts, (1,), generator=self.generator))
        first = int(torch.randint(0, s.max_start_snapshot, (1,), generator=self.generator))
        start = buffer.trajectories[expert, first]
        target = buffer.trajectories[expert, first + s.expert_snapshots]
        x, y = windows_of(signal, s.context_length, s.horizon)
        if s.window_norm:
            x, y = normalise_windows(x, y)
        # Never above the stability limit of SGD on these windows: beyond it the student
        # diverges, the matching loss spikes by orders of magnitude and its gradient inflates
        # the synthetic data (what made MTT's ETTm2 sets worse than Random).
        lr = torch.clamp(self.log_lr.exp(), max=stable_student_lr(x.detach(), s.horizon))
        flat = start.clone().requires_grad_(True)
        for _ in range(s.student_steps):
            index = torch.randperm(x.shape[0], generator=self.generator)[: s.student_batch]
            student_loss = torch.nn.functional.mse_loss(student(flat, x[index]), y[index])
            (grad,) = torch.autograd.grad(student_loss, flat, create_graph=True)
            flat = flat - lr * grad
        return (flat - target).pow(2).sum() / (start - target).pow(2).sum()

    @torch.no_grad()
    def _value_term(self, buffer: ExpertBuffer, student: FlatModel) -> None:
        """CondTSF: pull every target window toward a trained expert's forecast of its input.
        Overlapping windows' forecasts of the same step are averaged."""
        s = self.settings
        expert = int(torch.randint(0, buffer.trajectories.shape[0], (1,), generator=self.generator))
        params = buffer.trajectories[expert, -1]
        x, _ = windows_of(self.param, s.context_length, s.horizon)
        forecast = student(params, x)  # [n, H, C]
        total = torch.zeros_like(self.param)
        count = torch.zeros(self.param.shape[0], 1)
        for offset in range(s.horizon):
            rows = torch.arange(x.shape[0]) + s.context_length + offset
            total.index_add_(0, rows, forecast[:, offset])
            count.index_add_(0, rows, torch.ones(x.shape[0], 1))
        covered = count[:, 0] > 0
        mean = total[covered] / count[covered]
        self.param[covered] = (1 - s.value_beta) * self.param[covered] + s.value_beta * mean

    def save(self, path: Path, fingerprint: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        torch.save({
            "fingerprint": fingerprint,
            "iteration": self.iteration,
            "param": self.param.detach(),
            "log_lr": self.log_lr.detach(),
            "data_optimizer": self.data_optimizer.state_dict(),
            "lr_optimizer": self.lr_optimizer.state_dict(),
            "generator": self.generator.get_state(),
        }, tmp)
        fsync_path(tmp)
        os.replace(tmp, path)
        fsync_path(path.parent)

    def resume_from(self, path: Path, fingerprint: str) -> None:
        if not path.exists():
            return
        try:
            # weights_only: a checkpoint is data, never code to unpickle.
            saved = torch.load(path, weights_only=True)
        except Exception as err:  # torch raises several types for damaged files
            raise CheckpointError(
                f"{path} is not a readable distillation checkpoint ({type(err).__name__}); "
                "delete it to start over"
            ) from None
        if not isinstance(saved, dict) or saved.get("fingerprint") != fingerprint:
            raise CheckpointError(
                f"{path} belongs to another run (different method, data, seed or settings); "
                "delete it or choose another --out"
            )
        with torch.no_grad():
            self.param.copy_(saved["param"])
            self.log_lr.copy_(saved["log_lr"])
        self.data_optimizer.load_state_dict(saved["data_optimizer"])
        self.lr_optimizer.load_state_dict(saved["lr_optimizer"])
        self.generator.set_state(saved["generator"])
        self.iteration = int(saved["iteration"])
        log.info("resumed distillation from %s at iteration %d", path, self.iteration)


def stable_student_lr(x: torch.Tensor, horizon: int) -> float:
    """Half the largest stable SGD step of a linear map from these contexts ([n, L, C]) to
    `horizon` outputs under the mean squared error: the loss' Hessian for each output row is
    (2 / horizon) E[x x^T], and gradient descent is stable below 2 / its largest eigenvalue.
    DLinear is two such maps (seasonal and trend parts), hence the margin of a half."""
    contexts = x.permute(0, 2, 1).reshape(-1, x.shape[1])
    second_moment = contexts.T @ contexts / contexts.shape[0]
    if not torch.isfinite(second_moment).all():
        return math.inf  # the data itself diverged; the loss check below reports it
    largest = float(torch.linalg.eigvalsh(second_moment.double())[-1])
    return horizon / (2 * max(largest, 1e-12))


class SubsequencePool:
    """Real subsequences of length M gathered from a corpus ([P, M], each standardised); a
    draw gives `n_channels` of them as the columns of one [M, n_channels] sample."""

    def __init__(self, subsequences: torch.Tensor, n_channels: int) -> None:
        if subsequences.shape[0] == 0:
            raise ValueError("the corpus gave no real subsequence of the synthetic length; "
                             "use a shorter --length or a corpus with longer series")
        self.subsequences, self.n_channels = subsequences, n_channels

    def draw(self, length: int, generator: torch.Generator) -> torch.Tensor:
        if length != self.subsequences.shape[1]:
            raise ValueError(f"the pool holds length {self.subsequences.shape[1]}, "
                             f"asked for {length}")
        rows = torch.randint(0, self.subsequences.shape[0], (self.n_channels,),
                             generator=generator)
        return self.subsequences[rows].T.contiguous()


def initial_series(real: torch.Tensor | SubsequencePool, length: int, init: str,
                   generator: torch.Generator, top_k: int) -> torch.Tensor:
    if isinstance(real, SubsequencePool) and init in ("aligned", "noise"):
        if init == "aligned":
            raise ValueError("init=aligned needs one multivariate series, not a corpus")
        return torch.randn(length, real.n_channels, generator=generator)
    if init == "real":
        return real_subsequences(real, length, generator)
    if init == "harmonic":  # a real subsequence reduced to its own top-k harmonics
        series = real_subsequences(real, length, generator)
        return harmonic_filter(series, top_k_mask(to_spectrum(series), top_k))
    if init == "aligned":
        start = int(torch.randint(0, real.shape[0] - length + 1, (1,), generator=generator))
        return real[start : start + length].clone()
    return torch.randn(length, real.shape[1], generator=generator)


def real_bin_scale(real: torch.Tensor | SubsequencePool, length: int, seed: int,
                   draws: int = 64) -> torch.Tensor:
    """Mean real amplitude of each rFFT bin over `draws` random subsequences, per channel
    ([M//2 + 1, C]; floored at 1% of the channel's largest). Drawn with a generator of its
    own, so the distillation's random stream is untouched."""
    generator = torch.Generator().manual_seed(seed + 104_729)
    amplitude = torch.stack([to_spectrum(real_subsequences(real, length, generator)).abs()
                             for _ in range(draws)]).mean(dim=0)
    if isinstance(real, SubsequencePool):  # corpus channels are interchangeable draws
        amplitude = amplitude.mean(dim=1, keepdim=True).expand(-1, real.n_channels)
    return torch.maximum(amplitude, 0.01 * amplitude.max(dim=0, keepdim=True).values)


def real_subsequences(real: torch.Tensor | SubsequencePool, length: int,
                      generator: torch.Generator) -> torch.Tensor:
    """One random real subsequence of `length` rows per channel, channels drawn independently."""
    if isinstance(real, SubsequencePool):
        return real.draw(length, generator)
    n_rows, n_channels = real.shape
    starts = torch.randint(0, n_rows - length + 1, (n_channels,), generator=generator)
    return torch.stack([real[int(s) : int(s) + length, c] for c, s in enumerate(starts)], dim=1)
