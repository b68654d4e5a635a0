"""Ways to make a small training series from a dataset's train split.

Every method maps (scaled train split [time, channel], length M, seed) to a series [M, channel].
"""

from hdt_finetune.methods.reference_methods import full_data, random_subset

# "full" ignores the length: it is the whole train split, the reference every method chases.
METHODS = {"random": random_subset, "full": full_data}

__all__ = ["METHODS", "full_data", "random_subset"]
