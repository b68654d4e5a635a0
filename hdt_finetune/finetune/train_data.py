"""What a fine-tune trains on, as a typed value parsed once from its text form:

    full                        the real train split of the config's dataset
    corpus:ETTh2,ETTm1,generated the train splits of other datasets plus generated series
    distill:METHOD[:M[:SEED]]   a set distilled from the dataset on demand (cached by a hash
                                of the dataset's checksum, method, settings and seed)
    PATH                        a training-set folder (`hdt distill`, `hdt distill-corpus`)
    PATH+PATH[+...]             several sets trained on together, e.g. a few-shot real
                                subset (`--method random`) plus an HDT set; windows are cut
                                from each set alone, never across two
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Kind = Literal["full", "set", "corpus", "distill"]


@dataclass(frozen=True)
class TrainData:
    kind: Kind
    paths: tuple[Path, ...] = ()  # set: one folder, or the members of a mix
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
        members = [m.strip() for m in text.split("+")]
        if not all(members):
            raise ValueError(f"train_data {text!r} has an empty member; write PATH+PATH")
        if len(set(members)) < len(members):
            raise ValueError(f"train_data {text!r} names a set twice")
        return cls("set", paths=tuple(Path(m).expanduser() for m in members))

    @classmethod
    def of_set(cls, *paths: Path) -> TrainData:
        return cls("set", paths=tuple(Path(p) for p in paths))

    def __str__(self) -> str:
        if self.kind == "set":
            return "+".join(str(p) for p in self.paths)
        if self.kind == "corpus":
            return "corpus:" + ",".join(self.parts)
        if self.kind == "distill":
            return f"distill:{self.method}:{self.length}:{self.seed}"
        return "full"
