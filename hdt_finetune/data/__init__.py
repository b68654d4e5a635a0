"""Data layer: named datasets, a checksummed cache, validated loading, splits, scaling, windows."""

from hdt_finetune.data.data_cache import DatasetUnavailableError, data_dir, ensure_dataset_file
from hdt_finetune.data.dataset_registry import DATASETS, DatasetSpec
from hdt_finetune.data.prepared_data import DataSpec, PreparedData, prepare_data
from hdt_finetune.data.table_loading import DataValidationError, RepairPolicy, TimeSeriesTable
from hdt_finetune.data.windows import SlidingWindowDataset

__all__ = [
    "DATASETS",
    "DataSpec",
    "DataValidationError",
    "DatasetSpec",
    "DatasetUnavailableError",
    "PreparedData",
    "RepairPolicy",
    "SlidingWindowDataset",
    "TimeSeriesTable",
    "data_dir",
    "ensure_dataset_file",
    "prepare_data",
]
