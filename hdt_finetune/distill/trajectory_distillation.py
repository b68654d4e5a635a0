"""`hdt distill` with a matching method (MTT, CondTSF, HDT, HDT's ablations and variants) on
one dataset's train split: the expert buffer (or, for hdt_fm and hdt_gm, what the frozen
foundation model makes of real windows: embedding statistics, head gradient), then the
matching engine (`matching_engine.py`) on the series through a `SeriesSampler`."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from hdt_finetune.backbones import DLinearConfig
from hdt_finetune.distill.embedding_matching import EmbeddingTarget
from hdt_finetune.distill.expert_buffer import ExpertBuffer, load_or_train_experts
from hdt_finetune.distill.frozen_model import FrozenModel
from hdt_finetune.distill.head_gradient_matching import HeadGradientTarget
from hdt_finetune.distill.matching_backbone import DLinearMatching
from hdt_finetune.distill.matching_engine import CHECKPOINT, MatchingState, run_matching
from hdt_finetune.distill.outcome import DistillOutcome, MethodInputs
from hdt_finetune.distill.real_sampler import SeriesSampler
from hdt_finetune.distill.settings import (
    SWITCHES,
    DistillSettings,
    MethodSwitches,
    result_settings,
)
from hdt_finetune.provenance import Stopwatch
from hdt_finetune.run_identity import fingerprint

MODEL_TARGETS = {"embeddings": EmbeddingTarget, "head_gradients": HeadGradientTarget}


def run_trajectory_distillation(method: str, inputs: MethodInputs) -> DistillOutcome:
    length, seed, settings = inputs.length, inputs.seed, inputs.settings
    switches = SWITCHES[method]
    real = torch.as_tensor(np.asarray(inputs.train, dtype=np.float32))
    if length < settings.context_length + settings.horizon:
        raise ValueError(
            f"length {length} is shorter than one window ({settings.context_length} + "
            f"{settings.horizon}); trajectory matching needs at least one"
        )
    buffer = _experts(switches, real, length, seed, settings, inputs.source_id,
                      inputs.expert_cache, inputs.show_progress)
    clock = Stopwatch()
    sampler = SeriesSampler(real)
    state = MatchingState.start(switches, sampler, length, seed, settings)
    model_sha256 = ""
    if switches.model_matching:
        state.model_target = MODEL_TARGETS[switches.model_matching](settings, real, seed)
    elif switches.model_expert:  # only its forecasts, for the value term
        state.model_target = FrozenModel(settings, seed)
    if state.model_target is not None:
        model_sha256 = state.model_target.weights_sha256
    student = DLinearMatching(DLinearConfig(settings.context_length, settings.horizon,
                                            real.shape[1]))
    checkpoint = None if inputs.checkpoint_dir is None else inputs.checkpoint_dir / CHECKPOINT
    run_key = fingerprint({"method": method, "length": length, "seed": seed,
                           "source": inputs.source_id, "settings": result_settings(settings),
                           **({"model_sha256": model_sha256} if model_sha256 else {})})
    if checkpoint is not None:
        state.resume_from(checkpoint, run_key)
    history = run_matching(state, sampler, buffer, student, checkpoint, run_key,
                           f"distill {method}", inputs.show_progress)
    values = state.series().detach().numpy().astype(np.float32)
    info = {
        "switches": dataclasses.asdict(switches),
        "expert_buffer": None if buffer is None else {
            "key": buffer.key, "cached": buffer.cached, "wall_s": buffer.wall_s,
            "shape": list(buffer.trajectories.shape)},
        "student_lr": state.student_lr,
        **({"frozen_model": state.model_target.weights,
            "frozen_model_sha256": model_sha256,
            "flops": state.model_target.flops(real.shape[1], length, switches.value_term)}
           if state.model_target else {}),
        "loss_curve": history,  # this run's iterations (after a resume: from there on)
        "loop_wall_s": clock.seconds(),
    }
    return DistillOutcome(values=values, info=info)


def _experts(switches: MethodSwitches, real: torch.Tensor, length: int, seed: int,
             settings: DistillSettings, source_id: dict, cache: Path,
             show_progress: bool) -> ExpertBuffer | None:
    if not (switches.trajectory_matching
            or (switches.value_term and not switches.model_expert)):
        return None
    experts = settings.experts
    if switches.harmonics and settings.filter_experts:  # experts on harmonic-filtered data
        experts = dataclasses.replace(experts, filter_segment=length, filter_k=settings.top_k)
    backbone = DLinearConfig(settings.context_length, settings.horizon, real.shape[1])
    return load_or_train_experts(real, backbone, experts, seed, source_id, cache, show_progress)
