"""ONNX artifacts in onnxruntime (CPU). Torch-free."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgedino.runtime.base import METADATA_KEY, Runtime, parse_metadata, require

_DTYPES = {"tensor(float)": np.float32, "tensor(uint8)": np.uint8, "tensor(float16)": np.float16}


class OnnxRuntime(Runtime):
    kind = "onnxruntime"

    def __init__(self, path: Path, threads: int | None = None):
        ort = require("onnxruntime")
        options = ort.SessionOptions()
        # idle worker threads would spin between frames and slow the numpy work (tracking, drawing) that follows
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.path = path
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        self.metadata = parse_metadata(meta.get(METADATA_KEY), path)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.input_shape = tuple(d if isinstance(d, int) else -1 for d in inp.shape)
        self.input_dtype = np.dtype(_DTYPES[inp.type])
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        outs = self.session.run(None, {self.input_name: self._check_input(x)})
        return {name: np.asarray(o, np.float32) for name, o in zip(self.output_names, outs, strict=True)}


def load(path: Path, threads: int | None = None) -> Runtime:
    return OnnxRuntime(path, threads)
