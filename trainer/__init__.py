"""kaito-gitops trainer: LoRA/QLoRA fine-tuning that reads KAITO's training_config.yaml.

Run it with `python -m trainer --config training_config.yaml`; see docs/trainer.md.
"""
