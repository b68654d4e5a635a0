"""Fine-tuning time-series foundation models (Moirai via uni2ts) on distilled or real windows.

uni2ts is optional: importing this package never imports it; the Moirai functions do, through
:func:`hdt_finetune.finetune.uni2ts_compat.import_uni2ts`.
"""

from hdt_finetune.finetune.model_source import ModelUnavailableError
from hdt_finetune.finetune.moirai_adapter import (
    RANDOM_INIT_WEIGHTS,
    LoadedMoirai,
    MoiraiAdapter,
    MoiraiBatch,
    MoiraiSpec,
    load_moirai,
    random_moirai,
)
from hdt_finetune.finetune.uni2ts_compat import import_uni2ts

__all__ = [
    "RANDOM_INIT_WEIGHTS",
    "LoadedMoirai",
    "ModelUnavailableError",
    "MoiraiAdapter",
    "MoiraiBatch",
    "MoiraiSpec",
    "import_uni2ts",
    "load_moirai",
    "random_moirai",
]
