"""The live apps (track, features, classify, segment), installed as edgedino-<app> console scripts and runnable as
`python -m edgedino.apps.<app>`. Torch-free: they run on a device with only `edgedino[runtime]`.

Every app runs numpy's BLAS on one thread, set here because it must be set before numpy loads: its small matrix
work (propagation, PCA, softmax) would otherwise start a thread per core and fight the backbone's runtime for them
(2 cores: propagation 39 ms instead of 76 ms).
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
