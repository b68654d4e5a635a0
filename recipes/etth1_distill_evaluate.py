"""Distil ETTh1 into a small set and compare what it teaches against the full train split.

    python recipes/etth1_distill_evaluate.py [method=random] [length=384] \
        [backbone=dlinear] [seeds=2]

(`make demo` runs it.) Writes the set to runs/demo/ and a JSON report beside it.
"""

import sys
from pathlib import Path

from hdt_finetune.demo import DemoConfig, run_demo

if __name__ == "__main__":
    config = DemoConfig.from_overrides(sys.argv[1:], out=Path("runs/demo"))
    run_demo(config)
