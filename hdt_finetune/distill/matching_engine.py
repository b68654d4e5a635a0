"""The matching engine shared by `hdt distill` and `hdt distill-corpus`: MTT, CondTSF, HDT and
HDT's ablations in one loop.

Per iteration (PROTOCOL.md): draw an expert and a start snapshot t; run `student_steps` SGD
steps of the matching backbone from the expert's snapshot-t parameters on windows of the
synthetic series; the loss is the student's distance to the expert's snapshot t+i
parameters, normalised by how far the expert itself moved. HDT learns the series' rFFT
coefficients, trains the student on the synthetic signal filtered to the top-k harmonics of
a sampled real subsequence, and adds the amplitude loss on those harmonics.

The real side comes through a `RealSampler`, the model through a `MatchingBackbone`. All
randomness comes from one seeded generator held in the state, so a run, and a run resumed
from its checkpoint, give the same bits on the CPU.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm.auto import tqdm

from hdt_finetune.atomic_files import fsync_path
from hdt_finetune.distill.expert_buffer import ExpertBuffer
from hdt_finetune.distill.flat_params import normalise_windows, windows_of
from hdt_finetune.distill.frozen_model import FrozenModel
from hdt_finetune.distill.matching_backbone import MatchingBackbone
from hdt_finetune.distill.real_sampler import RealSampler, initial_series, real_bin_scale
from hdt_finetune.distill.settings import DistillSettings, MethodSwitches, student_lr_start
from hdt_finetune.distill.spectral import harmonic_loss, to_series, to_spectrum, top_k_mask
from hdt_finetune.run_identity import CheckpointError, ForeignCheckpointError

log = logging.getLogger(__name__)

CHECKPOINT = "distill_state.pt"
# The loss curve's name for each kind of matching against the foundation model.
MODEL_TERM = {"embeddings": "embed", "head_gradients": "head_grad"}


class DistillationDivergedError(RuntimeError):
    """The matching loss stopped being a finite number."""


class MatchingState:
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
        self.gradient_reducer: Callable[[list[torch.Tensor]], None] | None = None
        # The frozen foundation model: what hdt_fm and hdt_gm match against, and the value
        # term's expert of hdt_fm_soft and condtsf_fm.
        self.model_target: FrozenModel | None = None

    @classmethod
    def start(cls, switches: MethodSwitches, sampler: RealSampler, length: int, seed: int,
              settings: DistillSettings) -> MatchingState:
        generator = torch.Generator().manual_seed(seed)
        init = initial_series(sampler, length, settings.init, generator, settings.top_k)
        bin_scale = None
        if switches.parameterisation == "frequency":
            bin_scale = real_bin_scale(sampler, length, seed)
            param = torch.view_as_real(to_spectrum(init) / bin_scale).clone()
        else:
            param = init.clone()
        return cls(switches, settings, length, param, generator, student_lr_start(settings),
                   bin_scale)

    @property
    def student_lr(self) -> float:
        return float(self.log_lr.detach().exp())

    def spectrum(self) -> torch.Tensor:
        if self.switches.parameterisation == "frequency":
            return torch.view_as_complex(self.param) * self.bin_scale
        return to_spectrum(self.param)

    def series(self) -> torch.Tensor:
        if self.switches.parameterisation == "frequency":
            return to_series(self.spectrum(), self.length)
        return self.param

    @torch.no_grad()
    def set_series(self, series: torch.Tensor) -> None:
        """Replace the learnt series in place (the optimiser keeps its moments): the value
        term edits the series, whichever parameterisation holds it."""
        if self.switches.parameterisation == "frequency":
            series = torch.view_as_real(to_spectrum(series) / self.bin_scale)
        self.param.copy_(series)

    def step(self, sampler: RealSampler, buffer: ExpertBuffer | None,
             student: MatchingBackbone) -> dict[str, float]:
        s = self.settings
        terms: dict[str, float] = {}
        loss = torch.zeros(())
        if self.switches.harmonics:
            real_spectrum = to_spectrum(sampler.subsequences(self.length, self.generator))
            mask = top_k_mask(real_spectrum, s.top_k)
            spectrum = self.spectrum()
            harm = harmonic_loss(real_spectrum, spectrum, mask, s.harmonic_p)
            signal = to_series(spectrum * mask, self.length)
            matched = self.switches.trajectory_matching or self.switches.model_matching
            weight = s.harmonic_weight if matched else 1.0
            loss = loss + weight * harm
            terms["harm"] = float(harm.detach())
        else:
            signal = self.series()
        if self.switches.trajectory_matching:
            grad_loss = self._trajectory_loss(signal, buffer, student)
            loss = loss + grad_loss
            terms["grad"] = float(grad_loss.detach())
        if self.switches.model_matching:
            model_loss = self.model_target.loss(signal, self.generator)
            loss = loss + model_loss
            terms[MODEL_TERM[self.switches.model_matching]] = float(model_loss.detach())
        if not torch.isfinite(loss):
            raise DistillationDivergedError(
                f"the distillation diverged at iteration {self.iteration} (loss terms {terms}); "
                f"the student learning rate was {self.student_lr:.3g}. Lower "
                "student_lr_init, data_lr or spectrum_lr (key=value)"
            )
        self.data_optimizer.zero_grad(set_to_none=True)
        self.lr_optimizer.zero_grad(set_to_none=True)
        # Only the set's parameters: hdt_gm's graph also reaches the frozen model's head.
        loss.backward(inputs=[self.param, *([self.log_lr] if self.switches.trajectory_matching
                                            else [])])
        if self.gradient_reducer is not None:
            self.gradient_reducer([self.param.grad, *([self.log_lr.grad] if self.switches.
                                                      trajectory_matching else [])])
        self.data_optimizer.step()
        if self.switches.trajectory_matching:
            self.lr_optimizer.step()
        self.iteration += 1
        if self.switches.value_term and self.iteration % s.value_every == 0:
            self._value_term(buffer, student)
        return terms

    def _trajectory_loss(self, signal: torch.Tensor, buffer: ExpertBuffer,
                         student: MatchingBackbone) -> torch.Tensor:
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
        lr = torch.clamp(self.log_lr.exp(), max=student.max_student_lr(x.detach()))
        flat = student.unrolled_sgd(start, x, y, lr, s.student_steps, s.student_batch,
                                    self.generator)
        return (flat - target).pow(2).sum() / (start - target).pow(2).sum()

    @torch.no_grad()
    def _value_term(self, buffer: ExpertBuffer, student: MatchingBackbone) -> None:
        """CondTSF: pull every target window toward a trained expert's forecast of its input.
        Overlapping windows' forecasts of the same step are averaged. It edits the series, so
        it plugs into HDT's frequency parameterisation as well (hdt_soft)."""
        s = self.settings
        series = self.series().detach().clone()
        x, _ = windows_of(series, s.context_length, s.horizon)
        if self.switches.model_expert:  # hdt_fm_soft, condtsf_fm: the model forecasts
            forecast = self.model_target.forecast(x)
        else:
            expert = int(torch.randint(0, buffer.trajectories.shape[0], (1,),
                                       generator=self.generator))
            forecast = student(buffer.trajectories[expert, -1], x)  # [n, H, C]
        total = torch.zeros_like(series)
        count = torch.zeros(series.shape[0], 1)
        for offset in range(s.horizon):
            rows = torch.arange(x.shape[0]) + s.context_length + offset
            total.index_add_(0, rows, forecast[:, offset])
            count.index_add_(0, rows, torch.ones(x.shape[0], 1))
        covered = count[:, 0] > 0
        mean = total[covered] / count[covered]
        series[covered] = (1 - s.value_beta) * series[covered] + s.value_beta * mean
        self.set_series(series)

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
            raise ForeignCheckpointError(
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


def run_matching(state: MatchingState, sampler: RealSampler, buffer: ExpertBuffer | None,
                 student: MatchingBackbone, checkpoint: Path | None, fingerprint: str,
                 desc: str, show_progress: bool) -> list[dict[str, float]]:
    """Run the remaining iterations (after `state.resume_from`, if the caller resumed) with a
    progress bar of the loss terms, checkpointing every `checkpoint_every` iterations and at
    the end; returns the loss terms of each iteration run here."""
    settings = state.settings
    history: list[dict[str, float]] = []
    bar = tqdm(total=settings.iterations, initial=state.iteration, desc=desc,
               disable=not show_progress)
    while state.iteration < settings.iterations:
        terms = state.step(sampler, buffer, student)
        history.append(terms)
        bar.set_postfix({k: f"{v:.4f}" for k, v in terms.items()})
        bar.update()
        if checkpoint is not None and (state.iteration % settings.checkpoint_every == 0
                                       or state.iteration == settings.iterations):
            state.save(checkpoint, fingerprint)
    bar.close()
    return history
