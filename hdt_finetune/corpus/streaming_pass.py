"""One streaming pass over a corpus: everything distillation needs from the real side, in
memory bounded by settings, never by the corpus.

- Statistics: count, mean and variance of every finite point (Welford, merged exactly across
  chunks and processes): the corpus scaler, recorded in the manifest.
- A uniform sample of training windows (reservoir sampling, `window_reservoir` of them), each
  normalised by its own context's mean and std. A corpus mixes series of any scale, so the
  windows carry their own scale (as RevIN and Moirai do) instead of one global scaler, which
  one pass could not apply to points read before it was known. The experts train on these.
- A uniform sample of length-M subsequences (`pool_size`), each standardised: the pool that
  harmonic selection and initialisation draw real subsequences from.

Windows or subsequences holding a non-finite value, and windows whose context is constant,
are skipped and counted; series shorter than a window contribute none and are counted. A
point more than 10^6 median absolute deviations from its chunk's median (a sentinel such as
1e35) is treated as missing, counted, and its series named in a warning: one such value
would otherwise set the corpus statistics and swamp every window that holds it.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

import numpy as np
from tqdm.auto import tqdm

from hdt_finetune.corpus.corpus_reader import CorpusReader

log = logging.getLogger(__name__)

OUTLIER_MADS = 1e6


@dataclass(frozen=True)
class PassSettings:
    context_length: int = 96
    horizon: int = 96
    length: int = 384  # M: the pool's subsequence length
    window_reservoir: int = 65_536  # windows kept for the experts (~50 MB at 96 -> 96)
    pool_size: int = 2_048  # real subsequences kept for harmonic selection

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")


@dataclass
class Moments:
    """Welford's count, mean and sum of squared deviations; `merge` is exact (Chan et al.)."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, values: np.ndarray) -> None:
        if values.size:
            self.merge(Moments(values.size, float(values.mean()),
                               float(((values - values.mean()) ** 2).sum())))

    def merge(self, other: Moments) -> None:
        total = self.count + other.count
        if total == 0:
            return
        delta = other.mean - self.mean
        self.m2 += other.m2 + delta * delta * self.count * other.count / total
        self.mean += delta * other.count / total
        self.count = total

    @property
    def std(self) -> float:
        return float(np.sqrt(self.m2 / self.count)) if self.count else 0.0


@dataclass
class Reservoir:
    """A uniform sample of `capacity` items from a stream of unknown length (Algorithm R),
    vectorised per chunk: item i replaces slot j ~ U{0..i} when j < capacity."""

    capacity: int
    width: int
    items: np.ndarray = field(init=False)
    seen: int = 0

    def __post_init__(self) -> None:
        self.items = np.zeros((self.capacity, self.width), dtype=np.float32)

    @property
    def filled(self) -> np.ndarray:
        return self.items[: min(self.seen, self.capacity)]

    def offer(self, n_items: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Decide for the next `n_items`; returns (chosen item numbers 0..n_items-1, their
        slots). The caller materialises only the chosen items."""
        index = self.seen + np.arange(n_items)
        slots = np.where(index < self.capacity, index,
                         (rng.random(n_items) * (index + 1)).astype(np.int64))
        chosen = np.flatnonzero(slots < self.capacity)
        self.seen += n_items
        # A later item that lands on the same slot wins, as in the sequential algorithm.
        last = np.unique(slots[chosen][::-1], return_index=True)[1]
        chosen = chosen[::-1][last]
        return chosen, slots[chosen]


@dataclass
class CorpusSample:
    moments: Moments
    windows: Reservoir
    pool: Reservoir
    counts: dict[str, int]


def stream_corpus(reader: CorpusReader, settings: PassSettings, seed: int, rank: int = 0,
                  world: int = 1, show_progress: bool = True) -> CorpusSample:
    """Read this process' share of the corpus once; see the module docstring."""
    rng = np.random.default_rng([seed, rank])
    window = settings.context_length + settings.horizon
    moments = Moments()
    windows = Reservoir(settings.window_reservoir, window)
    pool = Reservoir(settings.pool_size, settings.length)
    counts = {"series": 0, "points": 0, "short_series": 0, "windows": 0,
              "windows_skipped": 0, "subsequences": 0, "outliers": 0}
    keep = max(window, settings.length) - 1
    tails: dict[int, np.ndarray] = {}
    lengths: dict[int, int] = {}
    bar = tqdm(desc=f"corpus pass (process {rank})", unit=" points", unit_scale=True,
               disable=not show_progress)
    for chunk in reader.chunks(rank, world):
        values = chunk.values
        outliers = _outliers(values)
        if outliers.any():
            counts["outliers"] += int(outliers.sum())
            log.warning("%s: %d point(s) more than %g median absolute deviations from the "
                        "median (largest %.3g) treated as missing", chunk.name,
                        int(outliers.sum()), OUTLIER_MADS, float(np.abs(values[outliers]).max()))
            values = np.where(outliers, np.nan, values)
        tail = tails.pop(chunk.series, np.empty(0))
        buffer = np.concatenate([tail, values])
        finite = np.isfinite(values)
        moments.add(values[finite])
        counts["points"] += values.size
        lengths[chunk.series] = lengths.get(chunk.series, 0) + values.size
        bar.update(values.size)
        prefix = _PrefixSums.of(buffer)
        counts["windows_skipped"] += _sample(buffer, prefix, tail.size, window, windows, rng,
                                             settings.context_length)
        _sample(buffer, prefix, tail.size, settings.length, pool, rng, None)
        if chunk.last:
            counts["series"] += 1
            counts["short_series"] += lengths.pop(chunk.series) < window
        else:
            tails[chunk.series] = buffer[-keep:] if keep else np.empty(0)
    bar.close()
    counts["windows"] = windows.seen
    counts["subsequences"] = pool.seen
    return CorpusSample(moments, windows, pool, counts)


def _outliers(values: np.ndarray) -> np.ndarray:
    """Finite points absurdly far from the chunk's median; the median and its absolute
    deviation are estimated on every 64th point, which keeps the check cheap."""
    sample = values[::64]
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return np.zeros(values.shape, dtype=bool)
    median = float(np.median(sample))
    spread = float(np.median(np.abs(sample - median))) or max(abs(median), 1.0)
    with np.errstate(invalid="ignore"):
        return np.isfinite(values) & (np.abs(values - median) > OUTLIER_MADS * spread)


@dataclass(frozen=True)
class _PrefixSums:
    """Running counts of non-finite points and sums of (centred) values and squares of one
    buffer: any span's validity, mean and variance in O(1). Built once per chunk, shared by
    the window and the pool samples."""

    bad: np.ndarray
    sums: np.ndarray
    squares: np.ndarray

    @classmethod
    def of(cls, buffer: np.ndarray) -> _PrefixSums:
        finite = np.isfinite(buffer)
        clean = np.where(finite, buffer, 0.0)
        centred = clean - clean.mean() if clean.size else clean
        return cls(np.concatenate([[0], np.cumsum(~finite)]),
                   np.concatenate([[0.0], np.cumsum(centred)]),
                   np.concatenate([[0.0], np.cumsum(centred**2)]))


def _sample(buffer: np.ndarray, prefix: _PrefixSums, tail: int, width: int,
            reservoir: Reservoir, rng: np.random.Generator, context: int | None) -> int:
    """Offer the valid new spans of `width` in `buffer` (those ending past the carried-over
    `tail`) to the reservoir; store the chosen ones normalised. Returns the spans skipped.

    `context` None: standardise each span by itself (pool subsequences); else by the mean and
    std of its first `context` points (training windows)."""
    starts = np.arange(max(0, tail - width + 1), buffer.size - width + 1)
    if starts.size == 0:
        return 0
    finite = prefix.bad[starts + width] == prefix.bad[starts]
    span = context or width
    mean = (prefix.sums[starts + span] - prefix.sums[starts]) / span
    var = (prefix.squares[starts + span] - prefix.squares[starts]) / span - mean**2
    valid = finite & (var > 1e-12 * (1.0 + mean**2))
    starts = starts[valid]
    chosen, slots = reservoir.offer(starts.size, rng)
    if chosen.size:
        spans = buffer[starts[chosen, None] + np.arange(width)]
        head = spans[:, :span]
        scale = np.maximum(head.std(axis=1, keepdims=True), 1e-12)
        reservoir.items[slots] = ((spans - head.mean(axis=1, keepdims=True)) / scale
                                  ).astype(np.float32)
    return int((~valid).sum())
