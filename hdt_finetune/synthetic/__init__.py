"""The on-disk format where distillation and training meet: a synthetic (or subset) series
folder with a Hugging Face `datasets` dataset in uni2ts's fields and a manifest."""

from hdt_finetune.synthetic.synthetic_store import (
    SyntheticSet,
    SyntheticSetError,
    check_same_source,
    read_synthetic_set,
    write_synthetic_set,
)

__all__ = ["SyntheticSet", "SyntheticSetError", "check_same_source", "read_synthetic_set",
           "write_synthetic_set"]
