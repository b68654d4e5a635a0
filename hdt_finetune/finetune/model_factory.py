"""Build the adapter a fine-tuning config asks for."""

from __future__ import annotations

from hdt_finetune.finetune.finetune_config import FinetuneConfig
from hdt_finetune.finetune.forecast_adapter import ForecastAdapter
from hdt_finetune.finetune.model_source import RANDOM_INIT


def build_adapter(config: FinetuneConfig) -> ForecastAdapter:
    if config.model == "patchtst":
        from hdt_finetune.finetune.patchtst_adapter import PatchTSTAdapter

        source = RANDOM_INIT if config.model_init == "random" else config.model_source
        if source is None:
            raise ValueError("PatchTST needs model_source=FOLDER_OR_HUB_ID or model.init=random")
        return PatchTSTAdapter.create(source, config.context_length, config.horizon,
                                      size=config.model_size, patch_length=config.patch_size)
    if config.model == "moirai":
        from hdt_finetune.finetune.moirai_adapter import MoiraiSpec
        from hdt_finetune.finetune.moirai_forecaster import MoiraiForecaster

        spec = MoiraiSpec(size=config.model_size, version=config.model_version,
                          patch_size=config.patch_size, context_length=config.context_length,
                          horizon=config.horizon)
        return MoiraiForecaster.create(spec, config.model_source,
                                       random_init=config.model_init == "random",
                                       seed=config.seed)
    raise ValueError(f"unknown model family {config.model!r}")
