"""Distillation of corpora larger than memory: streaming input, one pass, many processes."""

from hdt_finetune.corpus.corpus_distillation import (
    CORPUS_METHODS,
    CorpusDistillConfig,
    distill_corpus,
)
from hdt_finetune.corpus.corpus_reader import CorpusError, open_corpus

__all__ = ["CORPUS_METHODS", "CorpusDistillConfig", "CorpusError", "distill_corpus",
           "open_corpus"]
