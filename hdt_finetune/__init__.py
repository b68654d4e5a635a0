"""hdt_finetune: Harmonic Dataset Distillation for time series, and cheap fine-tuning on it."""

__version__ = "0.1.0"
