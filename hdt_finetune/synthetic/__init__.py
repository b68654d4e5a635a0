"""The on-disk format where distillation and training meet: a training-set folder with a
Hugging Face `datasets` dataset in uni2ts's fields and a verified manifest."""

from hdt_finetune.synthetic.synthetic_store import (
    SyntheticSet,
    SyntheticSetError,
    check_replaceable,
    check_usable_with,
    dataset_scaling,
    dataset_source,
    per_series_scaling,
    read_synthetic_set,
    source_spec,
    write_synthetic_set,
)

__all__ = ["SyntheticSet", "SyntheticSetError", "check_replaceable", "check_usable_with",
           "dataset_scaling", "dataset_source", "per_series_scaling", "read_synthetic_set",
           "source_spec", "write_synthetic_set"]
