"""Fine-tune PatchTST (transformers) on ETTh1, from full data or a distilled set.

    accelerate launch --config_file accelerate_config.yaml recipes/patchtst_etth.py \
        model.init=random max_steps=200 [train_data=runs/etth1_hdt] [mode=lora] [key=value ...]

Keys: see hdt_finetune/finetune/finetune_config.py. Offline, pass model_source=FOLDER or
model.init=random (a randomly initialised model, labelled so in every output).
"""

import sys

from hdt_finetune.finetune.finetune_recipe import run_recipe

if __name__ == "__main__":
    run_recipe(
        sys.argv[1:], model="patchtst", model_size="base", patch_size=16,
        out="runs/patchtst_etth1", learning_rate=1e-3
    )
