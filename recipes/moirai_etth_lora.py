"""Fine-tune Moirai-small on HDT-distilled ETTh1 with LoRA (rank 8 on q/k/v/out projections);
saves the adapter (lora_adapter/) and the merged model (model/).

    accelerate launch --config_file accelerate_config.yaml recipes/moirai_etth_lora.py \
        [model_source=FOLDER | model.init=random] [lora_rank=16] [key=value ...]
"""

import sys

from hdt_finetune.finetune.finetune_recipe import run_recipe

if __name__ == "__main__":
    run_recipe(
        sys.argv[1:], model="moirai", model_size="small", train_data="distill:hdt",
        mode="lora", out="runs/moirai_etth1_lora", max_steps=100, eval_every=25,
        save_every=25, val_stride=8, test_stride=8, learning_rate=1e-3
    )
