"""Moirai 1.x through Salesforce's uni2ts: weights (`moirai_weights`), window packing
(`moirai_packing`) and the adapter the trainer uses (`moirai_adapter`). uni2ts itself is
imported on first use, through `finetune/uni2ts_compat.py`."""
