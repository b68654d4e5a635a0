"""The fine-tuning back end: foundation models (Moirai through uni2ts, PatchTST) behind one
adapter interface, fine-tuned by an explicit Accelerate loop on a training-set folder, the
full train split or a corpus, with validation and test on a dataset's real splits. It reads
training sets through their folder format and never imports the distillation code; only
`finetune_command` distils a set on demand."""
