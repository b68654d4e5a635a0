"""Fine-tune PatchTST (transformers) on ETTh1, from full data or a training set.

    accelerate launch --config_file accelerate_config.yaml recipes/patchtst_etth.py \
        model.init=random max_steps=200 [train_data=runs/etth1_hdt] [mode=lora] [key=value ...]

Config: recipes/configs/patchtst/base_full_cpu.yaml.
"""

import sys

from hdt_finetune.finetune.finetune_command import run_recipe

if __name__ == "__main__":
    run_recipe("patchtst/base_full_cpu", sys.argv[1:])
