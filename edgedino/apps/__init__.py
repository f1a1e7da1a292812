"""The live apps (track, features, classify, segment), installed as edgedino-<app> console scripts and runnable as
`python -m edgedino.apps.<app>`. Torch-free: they run on a device with only `edgedino[runtime]`."""
