"""Reading corpora in chunks, each process its own share."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd
import pytest

from hdt_finetune.corpus import CorpusError, open_corpus


def table_corpus(folder, rows=1000, files=2, columns=3, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    frames = []
    for f in range(files):
        frame = pd.DataFrame(rng.standard_normal((rows, columns)),
                             columns=[f"c{c}" for c in range(columns)])
        frame.insert(0, "date", pd.date_range("2020-01-01", periods=rows, freq="h"))
        if f % 2:
            frame.to_csv(folder / f"f{f}.csv", index=False)
        else:
            frame.to_parquet(folder / f"f{f}.parquet", row_group_size=128, index=False)
        frames.append(frame)
    return frames


def collect(reader, rank=0, world=1):
    series = defaultdict(list)
    ends = {}
    for chunk in reader.chunks(rank, world):
        assert chunk.series not in ends, "a chunk after the series' last one"
        assert chunk.values.size <= reader.chunk_rows
        series[chunk.series].append(chunk.values)
        if chunk.last:
            ends[chunk.series] = True
    assert set(ends) == set(series)  # every series is closed
    return {k: np.concatenate(v) for k, v in series.items()}


def test_tables_are_read_in_chunks_and_give_back_every_column(tmp_path):
    frames = table_corpus(tmp_path / "corpus")
    reader = open_corpus(tmp_path / "corpus", chunk_rows=100)
    series = collect(reader)
    expected = [frame[c].to_numpy() for frame in frames for c in ("c0", "c1", "c2")]
    assert len(series) == 6  # the date column is not a series
    for number, values in enumerate(expected):
        np.testing.assert_allclose(series[number], values, rtol=1e-12)


def test_processes_read_disjoint_shares_that_cover_the_corpus(tmp_path):
    table_corpus(tmp_path / "corpus", files=3)
    reader = open_corpus(tmp_path / "corpus", chunk_rows=300)
    whole = collect(reader)
    shares = [collect(reader, rank, 2) for rank in range(2)]
    assert not set(shares[0]) & set(shares[1])
    assert set(shares[0]) | set(shares[1]) == set(whole)
    for share in shares:
        for number, values in share.items():
            np.testing.assert_array_equal(values, whole[number])


def test_saved_datasets_in_the_uni2ts_layout_and_folders_of_them(tmp_path):
    import datasets

    one = datasets.Dataset.from_dict({"item_id": ["a", "b"],
                                      "target": [np.arange(50.0), np.arange(70.0)]})
    two = datasets.Dataset.from_dict({"item_id": ["m"],  # one item of two variates
                                      "target": [np.stack([np.ones(40), np.zeros(40)])]})
    one.save_to_disk(str(tmp_path / "lotsa" / "one"))
    two.save_to_disk(str(tmp_path / "lotsa" / "two"))
    single = collect(open_corpus(tmp_path / "lotsa" / "one", chunk_rows=16))
    np.testing.assert_array_equal(single[1], np.arange(70.0))
    collection = collect(open_corpus(tmp_path / "lotsa", chunk_rows=16))
    assert [v.size for _, v in sorted(collection.items())] == [50, 70, 40, 40]
    np.testing.assert_array_equal(collection[2], np.ones(40))


def test_bad_corpora_are_refused_with_a_message(tmp_path, monkeypatch):
    with pytest.raises(CorpusError, match="is not a folder"):
        open_corpus(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="no .csv or .parquet"):
        open_corpus(tmp_path / "empty")
    (tmp_path / "text").mkdir()
    pd.DataFrame({"date": ["x"] * 3, "load": [1.0, 2, 3], "site": ["a", "b", "c"]}).to_csv(
        tmp_path / "text" / "t.csv", index=False)
    with pytest.raises(CorpusError, match=r"\['site'\] are not numeric"):
        list(open_corpus(tmp_path / "text").chunks())
    with pytest.raises(ValueError, match="chunk_rows must be >= 1"):
        open_corpus(tmp_path / "text", chunk_rows=0)


def test_an_unreachable_hub_corpus_says_what_to_do(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    reader = open_corpus("hf://nobody/no-such-corpus")
    with pytest.raises(CorpusError, match="save_to_disk"):
        next(reader.chunks())


@pytest.mark.parametrize(("content", "message"), [
    (b"", "cannot be read as CSV"),
    (bytes(range(256)) * 4, "cannot be read as CSV"),
    (b"date\n2020-01-01\n", "holds no series column"),
])
def test_unreadable_tables_in_a_corpus_are_named(tmp_path, content, message):
    folder = tmp_path / "corpus"
    folder.mkdir()
    pd.DataFrame({"a": np.arange(10.0)}).to_csv(folder / "good.csv", index=False)
    (folder / "odd.csv").write_bytes(content)
    with pytest.raises(CorpusError, match=message) as raised:
        list(open_corpus(folder).chunks())
    assert "odd.csv" in str(raised.value)
