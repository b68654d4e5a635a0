"""Distil ETTh1 into a small set and compare what it teaches against the full train split.

    python recipes/etth1_distill_evaluate.py [method=random] [length=384] \
        [backbone=dlinear] [seeds=2]

(`make distill-demo` runs it.) Config: recipes/configs/dlinear/random_cpu.yaml. Writes the set
to runs/demo/ and a JSON report beside it.
"""

import sys

from hdt_finetune.demo import run_demo_recipe

if __name__ == "__main__":
    run_demo_recipe("dlinear/random_cpu", sys.argv[1:])
