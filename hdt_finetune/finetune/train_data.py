"""What a fine-tune trains on, as a typed value parsed once from its text form:

    full                        the real train split of the config's dataset
    corpus:ETTh2,ETTm1,generated the train splits of other datasets plus generated series
    distill:METHOD[:M[:SEED]]   a set distilled from the dataset on demand (cached by a hash
                                of the dataset's checksum, method, settings and seed)
    PATH                        a training-set folder (`hdt distill`, `hdt distill-corpus`)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Kind = Literal["full", "set", "corpus", "distill"]


@dataclass(frozen=True)
class TrainData:
    kind: Kind
    path: Path | None = None  # set
    parts: tuple[str, ...] = ()  # corpus
    method: str | None = None  # distill
    length: int = 384  # distill: M
    seed: int = 0  # distill

    @classmethod
    def parse(cls, text: str) -> TrainData:
        text = text.strip()
        if not text:
            raise ValueError("train_data is empty")
        if text == "full":
            return cls("full")
        head, _, rest = text.partition(":")
        if head == "corpus":
            parts = tuple(p.strip() for p in rest.split(",") if p.strip())
            if not parts:
                raise ValueError("corpus: needs at least one dataset or 'generated'")
            return cls("corpus", parts=parts)
        if head == "distill":
            method, *numbers = rest.split(":")
            if not method or len(numbers) > 2:
                raise ValueError("write distill:METHOD[:M[:SEED]], e.g. distill:hdt:384:0")
            values = [int(n) for n in numbers]
            length = values[0] if values else 384
            seed = values[1] if len(values) > 1 else 0
            if length < 1 or seed < 0:
                raise ValueError("distill: M must be >= 1 and SEED >= 0")
            return cls("distill", method=method, length=length, seed=seed)
        return cls("set", path=Path(text).expanduser())

    def __str__(self) -> str:
        if self.kind == "set":
            return str(self.path)
        if self.kind == "corpus":
            return "corpus:" + ",".join(self.parts)
        if self.kind == "distill":
            return f"distill:{self.method}:{self.length}:{self.seed}"
        return "full"
