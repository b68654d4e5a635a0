"""Read a corpus of many series in bounded chunks, each process its own share of the series.

Sources (`open_corpus`):
- a folder of CSV and/or Parquet files: every numeric column of every file is one series
  (a `date`/`timestamp`/`time` column is skipped); Parquet is read a row group batch at a
  time, CSV `chunk_rows` rows at a time;
- a Hugging Face dataset saved with `save_to_disk`, in the uni2ts/LOTSA layout (`target` is
  one series, or `[variate, time]` several), or a folder of such datasets (a LOTSA
  collection); rows are read one at a time from the memory-mapped Arrow files;
- `hf://owner/name`: a dataset on the Hugging Face hub, streamed (needs network).

Series are numbered in a fixed order; process `rank` of `world` reads series `i` with
`i % world == rank`, so the shares are disjoint and together cover the corpus.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hdt_finetune.checksums import sha256_of, sha256_of_tree
from hdt_finetune.data.data_cache import hub_offline

TIME_COLUMNS = ("date", "timestamp", "time", "datetime")


class CorpusError(ValueError):
    """A corpus that cannot be read: missing, empty, or holding a non-numeric series."""


@dataclass(frozen=True)
class Chunk:
    series: int  # the series' number in the corpus order
    values: np.ndarray  # float64, consecutive points of that series
    last: bool  # the series ends with this chunk
    name: str  # where the series is: "file.parquet:column" or "series N of FOLDER"


class CorpusReader:
    """Yields the chunks of one process' share of the series, series after series."""

    def __init__(self, kind: str, location: str, files: list[Path], chunk_rows: int):
        self.kind, self.location, self.files, self.chunk_rows = kind, location, files, chunk_rows

    def describe(self) -> dict:
        return {"kind": self.kind, "location": self.location, "files": len(self.files)}

    def checksum(self) -> str | None:
        """One sha256 of every file of the corpus (None for a hub corpus, which we stream).
        It reads the files' bytes once more, apart from the pass, which parses them."""
        if self.kind == "hub":
            return None
        root = Path(self.location)
        digest = hashlib.sha256()
        for path in self.files:
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update((sha256_of_tree(path) if path.is_dir() else sha256_of(path)).encode())
        return digest.hexdigest()

    def chunks(self, rank: int = 0, world: int = 1) -> Iterator[Chunk]:
        if self.kind == "tables":
            yield from self._table_chunks(rank, world)
        else:
            yield from self._dataset_chunks(rank, world)

    # --- CSV / Parquet ---------------------------------------------------------------------

    def _table_chunks(self, rank: int, world: int) -> Iterator[Chunk]:
        number = 0
        for path in self.files:
            columns = _series_columns(path)
            mine = [c for i, c in enumerate(columns) if (number + i) % world == rank]
            first = {c: number + i for i, c in enumerate(columns)}
            number += len(columns)
            if not mine:
                continue
            for batch, last in _with_last(_table_batches(path, mine, self.chunk_rows)):
                for column in mine:
                    yield Chunk(first[column], batch[column], last, f"{path}:{column}")

    # --- Hugging Face / uni2ts datasets ----------------------------------------------------

    def _dataset_chunks(self, rank: int, world: int) -> Iterator[Chunk]:
        number = 0
        for rows in self._dataset_rows():
            for row in rows:
                target = np.asarray(row["target"], dtype=np.float64)
                variates = target.reshape(1, -1) if target.ndim == 1 else target
                for variate in variates:
                    if number % world == rank:
                        yield from _split(number, variate, self.chunk_rows,
                                          f"series {number} of {self.location}")
                    number += 1

    def _dataset_rows(self) -> Iterator:
        import datasets

        datasets.disable_progress_bars()
        if self.kind == "hub":
            try:
                if hub_offline():
                    raise ConnectionError("HF_HUB_OFFLINE is set")
                yield datasets.load_dataset(self.location, split="train", streaming=True)
            except Exception as err:  # noqa: BLE001 - hub errors come in many types
                raise CorpusError(
                    f"could not stream {self.location!r} from the Hugging Face hub "
                    f"({type(err).__name__}). Without network access, download it on a "
                    "machine that has one, save it with save_to_disk() and pass that folder"
                ) from None
            return
        for folder in self.files:
            table = datasets.load_from_disk(str(folder))
            if "target" not in table.column_names:
                raise CorpusError(f"{folder} has no 'target' column (uni2ts/LOTSA layout: "
                                  f"item_id, start, freq, target); it has {table.column_names}")
            yield table.select_columns(["target"])


def open_corpus(source: str | Path, chunk_rows: int = 100_000) -> CorpusReader:
    """A reader for a folder of tables, a saved dataset, a folder of saved datasets, or
    `hf://owner/name`; a clear error for anything else."""
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    text = str(source)
    if text.startswith("hf://"):
        return CorpusReader("hub", text[len("hf://"):], [], chunk_rows)
    folder = Path(source).expanduser()
    if not folder.is_dir():
        raise CorpusError(f"corpus {folder} is not a folder (give a folder of CSV/Parquet "
                          "files, a saved Hugging Face dataset, or hf://owner/name)")
    if _is_saved_dataset(folder):
        return CorpusReader("datasets", str(folder), [folder], chunk_rows)
    saved = sorted(p for p in folder.iterdir() if p.is_dir() and _is_saved_dataset(p))
    if saved:
        return CorpusReader("datasets", str(folder), saved, chunk_rows)
    tables = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".csv", ".parquet"))
    if not tables:
        raise CorpusError(f"{folder} holds no .csv or .parquet file and no saved dataset")
    return CorpusReader("tables", str(folder), tables, chunk_rows)


def _is_saved_dataset(folder: Path) -> bool:
    return (folder / "state.json").is_file() or (folder / "dataset_dict.json").is_file()


def _series_columns(path: Path) -> list[str]:
    """The numeric columns of a table, checked from its schema (Parquet) or first rows (CSV);
    a file that cannot be read as its kind fails naming it."""
    try:
        names, bad = _numeric_columns(path)
    except Exception as err:  # noqa: BLE001 - pandas and pyarrow raise many types
        kind = "Parquet" if path.suffix.lower() == ".parquet" else "CSV"
        reason = (str(err).splitlines() or [type(err).__name__])[0][:120]
        raise CorpusError(f"{path} cannot be read as {kind} ({reason})") from None
    if bad:
        raise CorpusError(f"{path}: column(s) {bad} are not numeric; every column but a "
                          f"time column ({', '.join(TIME_COLUMNS)}) must be a series")
    if not names:
        raise CorpusError(f"{path} holds no series column")
    return [str(c) for c in names]


def _numeric_columns(path: Path) -> tuple[list, list]:
    if path.suffix.lower() == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pq.read_schema(path)
        names = [f.name for f in schema if f.name.lower() not in TIME_COLUMNS]
        bad = [f.name for f in schema if f.name in names and not (
            pa.types.is_floating(f.type) or pa.types.is_integer(f.type))]
    else:
        import pandas as pd

        head = pd.read_csv(path, nrows=50)
        names = [c for c in head.columns if str(c).lower() not in TIME_COLUMNS]
        # A header without rows reads as text columns: no rows is no data, not bad data.
        bad = [c for c in names if len(head) and not pd.api.types.is_numeric_dtype(head[c])]
    return names, bad


def _table_batches(path: Path, columns: list[str], rows: int) -> Iterator[dict[str, np.ndarray]]:
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=rows, columns=columns):
            yield {c: batch.column(c).to_numpy(zero_copy_only=False).astype(np.float64)
                   for c in columns}
    else:
        import pandas as pd

        for frame in pd.read_csv(path, usecols=columns, chunksize=rows):
            yield {c: frame[c].to_numpy(dtype=np.float64) for c in columns}


def _split(number: int, values: np.ndarray, rows: int, name: str) -> Iterator[Chunk]:
    pieces = (values[start : start + rows] for start in range(0, max(len(values), 1), rows))
    for piece, last in _with_last(pieces):
        yield Chunk(number, piece, last, name)


def _with_last(items: Iterator) -> Iterator[tuple[object, bool]]:
    """(item, is_last) with one item of look-ahead: a file is never held whole."""
    items = iter(items)
    current = next(items, _END)
    while current is not _END:
        following = next(items, _END)
        yield current, following is _END
        current = following


_END = object()
