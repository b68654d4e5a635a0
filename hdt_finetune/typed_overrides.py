"""The one configuration system: `key=value` overrides of nested, typed, frozen dataclasses.

Every command, recipe, config file and benchmark builds its settings through
`apply_overrides`. Keys follow the dataclass fields, dotted for nested ones
(`experts.n_experts=4`); values are parsed by the field's annotation. An unknown key, a value
of the wrong type, a choice outside a `Literal`, or a NaN or infinite number fails with a
`ConfigError` naming the key; the dataclass' own `__post_init__` then checks ranges.
"""

from __future__ import annotations

import dataclasses
import math
import types
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

T = TypeVar("T")
_NONE_WORDS = ("none", "null")
_BOOL_WORDS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


class ConfigError(ValueError):
    """A setting that does not exist or whose value does not fit its type."""


def apply_overrides(config: T, overrides: Iterable[str] | Mapping[str, Any]) -> T:
    """A copy of the dataclass `config` with the overrides applied, validated on construction.

    `overrides`: `key=value` strings (command lines, recipes) or a mapping of dotted keys to
    values (config files); a later key wins over an earlier one."""
    pairs = overrides.items() if isinstance(overrides, Mapping) else map(split_pair, overrides)
    changes: dict[str, Any] = {}
    for key, raw in pairs:
        changes[key] = raw
    return _replace(config, changes, prefix="")


def split_pair(text: str) -> tuple[str, str]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"setting {text!r} is not key=value")
    return key.strip(), raw.strip()


def config_keys(cls: type, prefix: str = "") -> list[str]:
    """Every settable key of the dataclass `cls`, nested ones dotted."""
    keys = []
    hints = get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        kind = hints[field.name]
        if _is_group(kind):
            keys += config_keys(kind, f"{prefix}{field.name}.")
        else:
            keys.append(f"{prefix}{field.name}")
    return keys


def _is_group(kind: Any) -> bool:
    """A nested dataclass of settings (not a typed value with its own text form)."""
    return dataclasses.is_dataclass(kind) and not callable(getattr(kind, "parse", None))


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested mapping (a YAML config file) as dotted keys."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _replace(config: Any, changes: dict[str, Any], prefix: str) -> Any:
    cls = type(config)
    hints = get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    direct: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for key, raw in changes.items():
        head, dot, rest = key.partition(".")
        if head not in fields:
            raise ConfigError(f"unknown setting {prefix + key!r}; known: "
                              f"{', '.join(config_keys(type(config), prefix))}")
        kind = hints[head]
        if _is_group(kind):
            if not dot:
                raise ConfigError(f"{prefix + head!r} is a group of settings; set one of its "
                                  f"keys: {', '.join(config_keys(kind, prefix + head + '.'))}")
            nested.setdefault(head, {})[rest] = raw
        elif dot:
            raise ConfigError(f"unknown setting {prefix + key!r}: {prefix + head!r} has no "
                              "sub-settings")
        else:
            direct[head] = parse_value(prefix + head, raw, kind)
    for head, sub in nested.items():
        direct[head] = _replace(getattr(config, head), sub, f"{prefix}{head}.")
    return dataclasses.replace(config, **direct)


def parse_value(key: str, raw: Any, kind: Any) -> Any:
    """`raw` (a string from a command line, or a value from a config file) as `kind`."""
    try:
        return _parse(raw, kind)
    except (ValueError, TypeError) as err:
        detail = f" ({err})" if str(err) else ""
        raise ConfigError(f"bad value for {key}: {raw!r} (expected {_describe(kind)}){detail}"
                          ) from None


def _parse(raw: Any, kind: Any) -> Any:
    origin = get_origin(kind)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(kind) if a is not type(None)]
        if type(None) in get_args(kind) and (raw is None or (isinstance(raw, str)
                                                             and raw.lower() in _NONE_WORDS)):
            return None
        errors = []
        for option in options:
            try:
                return _parse(raw, option)
            except (ValueError, TypeError) as err:
                errors.append(str(err))
        raise ValueError("; ".join(e for e in errors if e))
    if origin is Literal:
        choices = get_args(kind)
        for choice in choices:
            if str(choice) == str(raw):
                return choice
        raise ValueError(f"choose from {', '.join(map(str, choices))}")
    if origin is tuple:
        items = raw.split(",") if isinstance(raw, str) else list(raw)
        inner = get_args(kind)[0]
        return tuple(_parse(item.strip() if isinstance(item, str) else item, inner)
                     for item in items if not (isinstance(item, str) and not item.strip()))
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        if str(raw).lower() in _BOOL_WORDS:
            return _BOOL_WORDS[str(raw).lower()]
        raise ValueError("")
    if kind is int:
        if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
            raise ValueError("")
        return int(raw)
    if kind is float:
        if isinstance(raw, bool):
            raise ValueError("")
        value = float(raw)
        if not math.isfinite(value):
            raise ValueError("NaN and infinite values are not settings")
        return value
    if kind is str:
        if raw is None or isinstance(raw, (bool, Mapping, list)):
            raise ValueError("")
        return str(raw)
    if kind is Path:
        if raw is None or not str(raw).strip():
            raise ValueError("an empty path")
        return Path(str(raw)).expanduser()
    parse = getattr(kind, "parse", None)
    if callable(parse):  # a typed value with its own text form (TrainData)
        return raw if isinstance(raw, kind) else parse(str(raw))
    raise TypeError(f"settings of type {kind} cannot be given as text")


def _describe(kind: Any) -> str:
    origin = get_origin(kind)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in get_args(kind))
    if origin is Literal:
        return "one of " + ", ".join(map(str, get_args(kind)))
    if origin is tuple:
        return f"comma-separated {_describe(get_args(kind)[0])}s"
    if kind is type(None):
        return "none"
    if kind is float:
        return "a finite number"
    if kind is int:
        return "an integer"
    if kind is bool:
        return "true or false"
    return getattr(kind, "__name__", str(kind))


def require_finite(config: Any, *names: str) -> None:
    """For `__post_init__`: the named float fields must be finite numbers (a config built in
    code does not pass through `parse_value`)."""
    for name in names:
        value = getattr(config, name)
        if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value)):
            raise ValueError(f"{name} must be a finite number, got {value!r}")

