"""Leaving the process group: a program that joined one leaves it once its work is done, so
no process is left to abort in gloo's teardown at interpreter exit."""

from __future__ import annotations

import torch.distributed as dist

from hdt_finetune.cli import main
from hdt_finetune.process_group import leave


def _join_alone(tmp_path) -> None:
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0,
                            world_size=1)


def _left_anyway() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def test_leave_ends_the_group_and_is_harmless_without_one(tmp_path):
    leave()  # nothing joined: nothing to do
    _join_alone(tmp_path)
    try:
        leave()
        assert not dist.is_initialized()
    finally:
        _left_anyway()


def test_the_command_line_leaves_the_group_it_ran_in(tmp_path, capsys):
    _join_alone(tmp_path)
    try:
        assert main(["datasets"]) == 0
        assert not dist.is_initialized()
    finally:
        _left_anyway()
