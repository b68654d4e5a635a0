"""The one override parser: typed values, nested keys, and errors that name the key."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from hdt_finetune.distill.settings import DistillSettings
from hdt_finetune.typed_overrides import ConfigError, apply_overrides, config_keys, flatten


@dataclass(frozen=True)
class Inner:
    steps: int = 3
    rate: float | None = None


@dataclass(frozen=True)
class Outer:
    name: str = "a"
    out: Path = Path("runs")
    flag: bool = False
    mode: Literal["full", "lora"] = "full"
    parts: tuple[str, ...] = ()
    inner: Inner = field(default_factory=Inner)

    def __post_init__(self) -> None:
        if self.inner.steps < 0:
            raise ValueError(f"inner.steps must be >= 0, got {self.inner.steps}")


def test_values_are_parsed_by_their_annotation():
    config = apply_overrides(Outer(), ["name=b", "out=x/y", "flag=true", "mode=lora",
                                       "parts=ETTh2, ETTm1,generated", "inner.steps=7",
                                       "inner.rate=1e-3"])
    assert config == Outer("b", Path("x/y"), True, "lora", ("ETTh2", "ETTm1", "generated"),
                           Inner(7, 1e-3))
    assert apply_overrides(config, ["inner.rate=none"]).inner.rate is None
    assert apply_overrides(Outer(), ["name=x", "name=y"]).name == "y"  # the last one wins


def test_an_optional_float_takes_scientific_notation():
    # The old parser took '0.001' but refused '1e-3' for an optional float.
    assert DistillSettings().student_lr_init is None
    assert apply_overrides(DistillSettings(), ["student_lr_init=1e-3"]).student_lr_init == 1e-3
    assert apply_overrides(DistillSettings(), ["experts.filter_k=8"]).experts.filter_k == 8


@pytest.mark.parametrize(("pair", "message"), [
    ("nmae=b", "unknown setting 'nmae'; known: name, out, flag, mode, parts, inner.steps"),
    ("inner.step=2", "unknown setting 'inner.step'; known: inner.steps, inner.rate"),
    ("inner=2", "'inner' is a group of settings"),
    ("name.x=2", "'name' has no sub-settings"),
    ("flag=maybe", "bad value for flag: 'maybe' (expected true or false)"),
    ("mode=half", "bad value for mode: 'half' (expected one of full, lora)"),
    ("inner.steps=2.5", "bad value for inner.steps: '2.5' (expected an integer)"),
    ("inner.rate=nan", "bad value for inner.rate: 'nan'"),
    ("inner.rate=inf", "NaN and infinite values are not settings"),
    ("novalue", "setting 'novalue' is not key=value"),
])
def test_errors_name_the_key(pair, message):
    with pytest.raises(ConfigError) as raised:
        apply_overrides(Outer(), [pair])
    assert message in str(raised.value)


def test_ranges_are_checked_by_the_dataclass_itself():
    with pytest.raises(ValueError, match="inner.steps must be >= 0, got -1"):
        apply_overrides(Outer(), ["inner.steps=-1"])
    with pytest.raises(ValueError, match="data_lr must be a finite number"):
        DistillSettings(data_lr=float("inf"))


def test_config_files_give_typed_values_and_nested_mappings():
    mapping = flatten({"name": "c", "flag": True, "inner": {"steps": 4, "rate": 0.5}})
    assert mapping == {"name": "c", "flag": True, "inner.steps": 4, "inner.rate": 0.5}
    config = apply_overrides(Outer(), mapping)
    assert config.inner == Inner(4, 0.5) and config.flag is True
    with pytest.raises(ConfigError, match="bad value for inner.steps: True"):
        apply_overrides(Outer(), {"inner.steps": True})
    assert config_keys(Outer)[-2:] == ["inner.steps", "inner.rate"]


def test_a_yaml_config_file_is_read_as_text_like_a_command_line(tmp_path):
    from hdt_finetune.finetune.finetune_command import build_config

    path = tmp_path / "config.yaml"
    path.write_text("mixed_precision: no\nmodel:\n  init: random\n  source: null\n"
                    "learning_rate: 1e-3\n")
    config = build_config(str(path), ["max_steps=5"])
    assert config.mixed_precision == "no" and config.model.init == "random"
    assert config.model.source is None and config.learning_rate == 1e-3
    assert config.max_steps == 5
    path.write_text("out:\n")
    with pytest.raises(ConfigError, match="bad value for out: '' .*an empty path"):
        build_config(str(path), [])
    with pytest.raises(ValueError, match="no config 'moirai/huge': give the path"):
        build_config("moirai/huge", [])
