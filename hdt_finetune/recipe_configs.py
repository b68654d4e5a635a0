"""Recipe config files: the defaults of a recipe, as YAML beside the recipes
(`recipes/configs/<model>/<size>_<method>_<device>.yaml`), read into the dotted keys that the
override parser (`typed_overrides`) applies before the command line's `key=value` tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hdt_finetune.typed_overrides import flatten

RECIPE_CONFIGS = Path(__file__).resolve().parents[1] / "recipes" / "configs"


def load_config_file(name: str) -> dict[str, Any]:
    """`name`: the path of a YAML file, or a name under recipes/configs/
    (`moirai/small_full_cpu`)."""
    import yaml

    path = Path(name).expanduser()
    if not path.is_file():
        path = RECIPE_CONFIGS / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.relative_to(RECIPE_CONFIGS).with_suffix("").as_posix()
                       for p in RECIPE_CONFIGS.rglob("*.yaml")) if RECIPE_CONFIGS.is_dir() else []
        raise ValueError(f"no config {name!r}: give the path of a YAML file or one of "
                         f"{', '.join(known) or '(none found)'}")
    try:
        # Every scalar as text, parsed by the override parser as a command line's would be
        # (YAML 1.1 would read `mixed_precision: no` as false).
        mapping = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.BaseLoader) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"{path} is not readable YAML ({err})") from None
    if not isinstance(mapping, dict):
        raise ValueError(f"{path} must hold a mapping of settings")
    return flatten(mapping)
