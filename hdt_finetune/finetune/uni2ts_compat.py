"""Every adaptation needed to import and use Salesforce's uni2ts 2.0.0 on our stack.

uni2ts 2.0.0 pins torch<2.5, numpy 1.26, gluonts~=0.14 and pandas<3 (through gluonts); we run
torch 2.13, numpy 2.x and pandas 3.x. It is therefore installed without its pins::

    pip install 'hdt-finetune[moirai]'      # einops, jaxtyping, lightning, pydantic, ...
    pip install --no-deps uni2ts==2.0.0 gluonts==0.17.0

(gluonts pins pandas<3, hence --no-deps for it too; its real needs are in the extra.)

What is adapted here, and why (every shim is idempotent and only applied when needed):

1. ``jaxtyping.PyTree``: uni2ts's distribution code annotates with ``PyTree[...]``, which
   jaxtyping resolves lazily by importing jax (~380 MB). The annotations are never checked at
   run time, so a subscriptable stand-in that means ``Any`` is enough.
2. ``hydra.utils.instantiate``: ``MoiraiModule`` imports it at module level only to rebuild its
   ``distr_output`` from ``config.json`` in ``from_pretrained``. hydra-core (+ omegaconf +
   antlr) is not among our dependencies, so when hydra is absent a minimal ``instantiate``
   understanding the nested ``{"_target_": "uni2ts.distribution...."}`` configs is provided.
   It refuses any target outside ``uni2ts.`` (uni2ts also checks this itself).
3. gluonts's import-time ``UserWarning`` about orjson/ujson is silenced during the import: we
   never serialise through gluonts, so it is noise.
4. Pandas >= 2.2 renamed frequency aliases ('H' -> 'h', 'T' -> 'min', 'S' -> 's', 'M' -> 'ME',
   'Q' -> 'QE', 'Y' -> 'YE'); ``DefaultPatchSizeConstraints`` only knows the old ones and raises
   ``KeyError`` for e.g. 'h'. The new aliases are added to its table. Our adapter uses a fixed
   patch size and never calls it; this only matters for callers of uni2ts's own transforms.

5. ``PackedStdScaler`` sets padding rows' loc and scale in place, after the ``sqrt``, so no
   gradient can flow to the series it scales. ``hdt_fm`` needs that gradient (it optimises
   the windows through the frozen model), so ``window_loc_scale`` computes the same
   statistics without in-place edits, for our packing (one sample per row, no padding
   sample); a test holds it equal to the module's scaler.

Known gaps that are deliberately not patched:

- Lightning checkpoints (``.ckpt``) need ``torch.load(weights_only=False)`` under torch >= 2.6;
  we never load them and save weights with ``save_pretrained`` (safetensors) instead.
- Moirai-2 (``uni2ts.model.moirai2``) has no fine-tuning objective in uni2ts 2.0.0, so only
  Moirai 1.x is supported.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import logging
import sys
import types
import typing
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

INSTALL_HINT = (
    "Moirai support needs Salesforce's uni2ts 2.0.0, installed without its (outdated) pins: "
    "`pip install 'hdt-finetune[moirai]'` and then "
    "`pip install --no-deps uni2ts==2.0.0 gluonts==0.17.0`."
)

# New pandas (>= 2.2) frequency aliases -> the old keys of DefaultPatchSizeConstraints.
_PANDAS_ALIAS_TO_OLD = {"s": "S", "min": "T", "h": "H", "ME": "M", "QE": "Q", "YE": "Y"}


@dataclass(frozen=True)
class Uni2ts:
    """The pieces of uni2ts that hdt_finetune uses."""

    MoiraiModule: type
    PackedNLLLoss: type
    MixtureOutput: type
    StudentTOutput: type
    NormalFixedScaleOutput: type
    NegativeBinomialOutput: type
    LogNormalOutput: type
    mask_fill: Callable[..., Any]
    packed_attention_mask: Callable[..., Any]
    version: str


class _PyTreeStandIn:
    """``PyTree[...]`` without jax: any subscript is just ``typing.Any``."""

    def __class_getitem__(cls, item: object) -> object:
        return typing.Any


def _shim_jaxtyping_pytree() -> None:
    import jaxtyping

    if "PyTree" in vars(jaxtyping) or importlib.util.find_spec("jax") is not None:
        return  # already shimmed, or the real (jax-backed) PyTree is available
    jaxtyping.PyTree = _PyTreeStandIn  # type: ignore[attr-defined]
    logger.debug("jaxtyping.PyTree shimmed (jax not installed)")


def _instantiate(config: Any, _convert_: str | None = None) -> Any:
    """Minimal ``hydra.utils.instantiate`` for uni2ts's ``distr_output`` configs."""
    if isinstance(config, list | tuple):
        return [_instantiate(item) for item in config]
    if not isinstance(config, dict):
        return config
    kwargs = {key: _instantiate(value) for key, value in config.items() if key != "_target_"}
    target = config.get("_target_")
    if target is None:
        return kwargs
    if not isinstance(target, str) or not target.startswith("uni2ts."):
        raise ValueError(f"refusing to instantiate {target!r}: only uni2ts classes are allowed")
    module_name, _, attr = target.rpartition(".")
    return getattr(importlib.import_module(module_name), attr)(**kwargs)


def _shim_hydra() -> None:
    if "hydra" in sys.modules or importlib.util.find_spec("hydra") is not None:
        return  # the real hydra-core (or our shim) is already there
    hydra = types.ModuleType("hydra")
    hydra_utils = types.ModuleType("hydra.utils")
    hydra_utils.instantiate = _instantiate  # type: ignore[attr-defined]
    hydra.utils = hydra_utils  # type: ignore[attr-defined]
    sys.modules["hydra"] = hydra
    sys.modules["hydra.utils"] = hydra_utils
    logger.debug("hydra.utils.instantiate shimmed (hydra-core not installed)")


def _shim_pandas_frequency_aliases() -> None:
    from uni2ts.transform.patch import DefaultPatchSizeConstraints

    ranges = DefaultPatchSizeConstraints.DEFAULT_RANGES
    for new, old in _PANDAS_ALIAS_TO_OLD.items():
        ranges.setdefault(new, ranges[old])


@functools.cache
def import_uni2ts() -> Uni2ts:
    """Apply the shims (once) and import uni2ts; raise ``ImportError`` with install help."""
    if importlib.util.find_spec("uni2ts") is None:
        raise ImportError(f"uni2ts is not installed. {INSTALL_HINT}")
    try:
        _shim_jaxtyping_pytree()
        _shim_hydra()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*json.*", category=UserWarning)
            import uni2ts
            from uni2ts.common.torch_util import mask_fill, packed_attention_mask
            from uni2ts.distribution import (
                LogNormalOutput,
                MixtureOutput,
                NegativeBinomialOutput,
                NormalFixedScaleOutput,
                StudentTOutput,
            )
            from uni2ts.loss.packed import PackedNLLLoss
            from uni2ts.model.moirai import MoiraiModule
        _shim_pandas_frequency_aliases()
    except ModuleNotFoundError as err:
        raise ImportError(
            f"uni2ts is installed but its dependency {err.name!r} is missing. {INSTALL_HINT}"
        ) from err
    return Uni2ts(
        MoiraiModule=MoiraiModule,
        PackedNLLLoss=PackedNLLLoss,
        MixtureOutput=MixtureOutput,
        StudentTOutput=StudentTOutput,
        NormalFixedScaleOutput=NormalFixedScaleOutput,
        NegativeBinomialOutput=NegativeBinomialOutput,
        LogNormalOutput=LogNormalOutput,
        mask_fill=mask_fill,
        packed_attention_mask=packed_attention_mask,
        version=getattr(uni2ts, "__version__", "unknown"),
    )


def window_loc_scale(scaler: Any, target: Any, observed_mask: Any) -> tuple[Any, Any]:
    """``PackedStdScaler``'s loc and scale (shapes ``[B, 1, max_patch]``), differentiable in
    `target`, when every row of the batch is one sample and one variate. `observed_mask` is
    the scaler's mask (observed context points only)."""
    observed = observed_mask.to(target.dtype)
    count = observed.sum(dim=(1, 2), keepdim=True)
    loc = (target * observed).sum(dim=(1, 2), keepdim=True) / count
    var = ((target - loc).pow(2) * observed).sum(dim=(1, 2), keepdim=True) / (
        count - scaler.correction)
    scale = (var + scaler.minimum_scale).sqrt()
    width = target.shape[-1]
    return loc.expand(-1, 1, width), scale.expand(-1, 1, width)
