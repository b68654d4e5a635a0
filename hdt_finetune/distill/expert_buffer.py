"""The expert buffer: parameter trajectories of DLinear trained on the real training split.

Trajectory matching starts the student at an expert's snapshot-t parameters and compares it
with the expert's parameters i snapshots later. Snapshots are a fixed number of SGD steps
apart, not an epoch apart: with epochs, the distance an expert travels between two snapshots
grows with the size of the training split (ETTm has 4x the windows of ETTh), and a student
learning rate that suits one data set diverges on the other. Training the experts is the
expensive part of distillation, so buffers are cached on disk, keyed by everything that
shapes them (source data and its checksum, split, backbone config, training settings,
harmonic filter, seed), and their creation cost is carried into every manifest that uses them.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from hdt_finetune.atomic_files import atomic_directory
from hdt_finetune.backbones import DLinearConfig
from hdt_finetune.distill.flat_params import windows_of
from hdt_finetune.distill.matching_backbone import DLinearMatching, MatchingBackbone
from hdt_finetune.distill.spectral import filter_in_segments
from hdt_finetune.provenance import Stopwatch
from hdt_finetune.run_identity import fingerprint

log = logging.getLogger(__name__)

BUFFER_FORMAT = 3  # 3: DLinear's closed-form SGD (2: autograd; snapshots every
# snapshot_steps SGD steps since 2, every epoch in 1)


@dataclass(frozen=True)
class ExpertSettings:
    n_experts: int = 8
    snapshots: int = 12  # parameters are saved at the start and after every snapshot_steps
    snapshot_steps: int = 133  # one pass over ETTh1's 8449 train windows at batch 64
    learning_rate: float = 0.05  # plain SGD, as MTT's experts: smooth, comparable steps
    batch_size: int = 64
    # Harmonic filter of the real data (HDT): segment length M and k harmonics; None = off.
    filter_segment: int | None = None
    filter_k: int | None = None

    def __post_init__(self) -> None:
        for name in ("n_experts", "snapshots", "snapshot_steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"experts.{name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.learning_rate < math.inf:
            raise ValueError(f"experts.learning_rate must be a finite number > 0, got "
                             f"{self.learning_rate}")


@dataclass(frozen=True)
class ExpertBuffer:
    trajectories: torch.Tensor  # [expert, snapshot + 1, parameter]
    wall_s: float  # what building it cost, whether or not it came from the cache
    cached: bool
    key: str


def buffer_key(source_id: dict, backbone: DLinearConfig, settings: ExpertSettings,
               seed: int) -> str:
    return fingerprint({"format": BUFFER_FORMAT, "source": source_id, "backbone": backbone,
                        "experts": settings, "seed": seed}, length=20)


def load_or_train_experts(
    train: torch.Tensor,
    backbone: DLinearConfig,
    settings: ExpertSettings,
    seed: int,
    source_id: dict,
    cache_dir: Path,
    show_progress: bool = True,
) -> ExpertBuffer:
    key = buffer_key(source_id, backbone, settings, seed)
    folder = cache_dir / key
    cached = _read_cached(folder, key, _buffer_shape(backbone, settings))
    if cached is not None:
        return cached
    clock = Stopwatch()
    trajectories = train_experts(train, backbone, settings, seed, show_progress)
    wall_s = clock.seconds()
    with atomic_directory(folder, overwrite=True) as tmp:
        save_file({"trajectories": trajectories.contiguous()},
                  str(tmp / "trajectories.safetensors"))
        (tmp / "meta.json").write_text(json.dumps(
            {"key": key, "wall_s": wall_s, "source": source_id, "backbone": asdict(backbone),
             "experts": asdict(settings), "seed": seed}, indent=2))
    log.info("expert buffer %s built in %.1fs", key, wall_s)
    return ExpertBuffer(trajectories, wall_s, cached=False, key=key)


def _buffer_shape(backbone: DLinearConfig, settings: ExpertSettings) -> tuple[int, int, int]:
    with torch.random.fork_rng(devices=[]):  # counting parameters must not draw from the RNG
        n_params = DLinearMatching(backbone).n_params
    return settings.n_experts, settings.snapshots + 1, n_params


def _read_cached(folder: Path, key: str, shape: tuple[int, int, int]) -> ExpertBuffer | None:
    """The cached buffer, or None when there is none or it is damaged (then it is rebuilt:
    a cache is ours to redo, and a bad one must not end or skew a distillation)."""
    if not folder.exists():
        return None
    try:
        meta = json.loads((folder / "meta.json").read_text())
        trajectories = load_file(str(folder / "trajectories.safetensors"))["trajectories"]
        if meta.get("key") != key:
            raise ValueError(f"meta.json names key {meta.get('key')!r}")
        if tuple(trajectories.shape) != shape:
            raise ValueError(f"shape {tuple(trajectories.shape)}, expected {shape}")
        if not torch.isfinite(trajectories).all():
            raise ValueError("non-finite parameters")
        wall_s = float(meta["wall_s"])
    except Exception as err:  # noqa: BLE001 - json, safetensors and OS errors alike
        log.warning("the cached expert buffer %s is damaged (%s: %s); rebuilding it", folder,
                    type(err).__name__, err)
        return None
    log.info("expert buffer %s from the cache (built in %.1fs)", key, wall_s)
    return ExpertBuffer(trajectories, wall_s, cached=True, key=key)


def train_experts(
    train: torch.Tensor,
    backbone: DLinearConfig,
    settings: ExpertSettings,
    seed: int,
    show_progress: bool = True,
) -> torch.Tensor:
    """Train `n_experts` DLinear models with SGD on the windows of `train`; return their
    parameters at the start and after every `snapshot_steps` steps."""
    generator = torch.Generator().manual_seed(seed)
    if settings.filter_segment is not None:
        train = filter_in_segments(train, settings.filter_segment, settings.filter_k)
    x_all, y_all = windows_of(train, backbone.context_length, backbone.horizon)
    return sgd_trajectories(x_all, y_all, lambda: DLinearMatching(backbone), settings,
                            [generator] * settings.n_experts, show_progress)


def sgd_trajectories(
    x_all: torch.Tensor,
    y_all: torch.Tensor,
    build_model: Callable[[], MatchingBackbone],
    settings: ExpertSettings,
    generators: list[torch.Generator],
    show_progress: bool = True,
) -> torch.Tensor:
    """One expert's SGD on windows ([n, L, C], [n, H, C]) per generator, which draws its
    initialisation (`build_model` runs after torch is seeded from it) and its batches (a
    fresh permutation every epoch). Passing one generator object for every expert chains
    them; a generator of its own per expert makes each expert independent of the others, so
    processes can train different experts. The draws are made first, expert after expert
    (the order of training them one at a time); the experts then train side by side."""
    n, steps = x_all.shape[0], settings.snapshots * settings.snapshot_steps
    starts, schedules = [], []
    for generator in generators:
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
        model = build_model()
        starts.append(model.initial_vector())
        batches = _epoch_batches(n, settings.batch_size, generator)
        schedules.append([next(batches) for _ in range(steps)])
    # Every expert's epochs have the same length, so step t's batches have one size.
    batches = [torch.stack(step) for step in zip(*schedules, strict=True)]
    bar = tqdm(total=settings.snapshots, desc="expert snapshots", disable=not show_progress,
               leave=False)
    # `model` is the last expert built: any of them trains all (its own weights are unused).
    trajectories = model.sgd_snapshots(torch.stack(starts), x_all, y_all, batches,
                                       settings.learning_rate, settings.snapshot_steps,
                                       on_snapshot=bar.update)
    bar.close()
    return trajectories


def _epoch_batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Index batches without end: each epoch a new permutation, its last batch possibly short."""
    while True:
        order = torch.randperm(n, generator=generator)
        yield from order.split(batch_size)
