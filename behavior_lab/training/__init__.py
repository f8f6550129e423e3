"""Training: the thin LightningModule (module.py), the DataModule over the data layer (datamodule.py,
sampler.py, augment.py), the seed's optimizer/schedule (schedule.py), EMA (ema.py), loggers, FSDP
layer-pair sharding (fsdp.py) and the exported checkpoint (export.py). `behavior-lab train` is
behavior_lab/cli/train.py. Nothing is imported here, so `import behavior_lab.training` stays cheap."""
