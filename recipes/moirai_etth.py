"""Distil ETTh1 with HDT (or reuse the cached set), fine-tune Moirai-small on it, and test it
on the real ETTh1 test split, beside full data for the same number of steps and the model
as loaded (zero-shot); prints the table and writes OUT/side_by_side.json and each arm's
record (OUT/set, OUT/full_same_steps, OUT/zero_shot).

    accelerate launch --config_file accelerate_config.yaml recipes/moirai_etth.py [key=value ...]

Config: recipes/configs/moirai/small_full_cpu.yaml. Offline: model.init=random (a random-init
model, labelled so everywhere) or model.source=FOLDER.
"""

import sys

from hdt_finetune.finetune.finetune_command import run_recipe
from hdt_finetune.finetune.side_by_side import side_by_side_from_overrides

if __name__ == "__main__":
    run_recipe("moirai/small_full_cpu", sys.argv[1:], side_by_side_from_overrides)
