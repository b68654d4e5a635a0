"""Fine-tune Moirai-small on HDT-distilled ETTh1 with LoRA; saves the adapter
(OUT/lora_adapter/) and the merged model (OUT/model/).

    accelerate launch --config_file accelerate_config.yaml recipes/moirai_etth_lora.py \
        [key=value ...]

Config: recipes/configs/moirai/small_lora_cpu.yaml (e.g. lora_rank=16).
"""

import sys

from hdt_finetune.finetune.finetune_command import run_recipe

if __name__ == "__main__":
    run_recipe("moirai/small_lora_cpu", sys.argv[1:])
