"""Distil ETTh1 with HDT (or reuse the cached set), fine-tune Moirai-small on it, and test it
on the real ETTh1 test split; prints and writes the cost/accuracy record.

    accelerate launch --config_file accelerate_config.yaml recipes/moirai_etth.py [key=value ...]

Config: recipes/configs/moirai/small_full_cpu.yaml. Offline: model.init=random (a random-init
model, labelled so everywhere) or model.source=FOLDER.
"""

import sys

from hdt_finetune.finetune.finetune_command import run_recipe

if __name__ == "__main__":
    run_recipe("moirai/small_full_cpu", sys.argv[1:])
