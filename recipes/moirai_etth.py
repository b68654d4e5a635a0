"""Distil ETTh1 with HDT (or reuse the cached set), fine-tune Moirai-small on it, and test it
on the real ETTh1 test split; prints and writes the cost/accuracy record.

    accelerate launch --config_file accelerate_config.yaml recipes/moirai_etth.py \
        [model_source=FOLDER | model.init=random] [train_data=full] [key=value ...]

Keys: hdt_finetune/finetune/finetune_config.py. Without network, pass a local weights folder
(model_source=...) or model.init=random (a random-init model, labelled so everywhere).
"""

import sys

from hdt_finetune.finetune.finetune_recipe import run_recipe

if __name__ == "__main__":
    run_recipe(
        sys.argv[1:], model="moirai", model_size="small", train_data="distill:hdt",
        out="runs/moirai_etth1", max_steps=100, eval_every=25, save_every=25, val_stride=8,
        test_stride=8, learning_rate=1e-4
    )
