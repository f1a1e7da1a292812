"""Activation ranges for Core ML int8 on Linux, where Core ML cannot run: the MIL program, saved as it is, is
evaluated by edgedino's reference interpreter (edgedino.export.coreml.interpreter) on the calibration images.

Ranges therefore come from the program's own arithmetic (float16 where it computes in float16). Torch-free.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgedino.export.coreml.interpreter import Program

if TYPE_CHECKING:
    from coremltools.converters.mil.mil import Program as MILProgram

# coremltools computes activation scales in float16: a range narrower than this would give a zero scale
# (e.g. LayerScale outputs of a freshly initialised model), so it is widened to it.
MIN_RANGE = 2 * 127 * 2.0**-24


def _interpreter(prog: MILProgram, folder: Path) -> Program:
    """The program saved as an ML program (no passes, so every var keeps its name), loaded in the interpreter."""
    import coremltools as ct

    opset = prog.functions["main"].opset_version
    model = ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=opset,
                       pass_pipeline=ct.PassPipeline.EMPTY)
    model.save(str(folder / "calibration.mlpackage"))
    return Program(folder / "calibration.mlpackage")


def run_program(prog: MILProgram, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every var of the program's main function, computed for one input (batch as the program fixes it)."""
    with tempfile.TemporaryDirectory() as folder:
        program = _interpreter(prog, Path(folder))
        return program.values({name: x for name in program.inputs})


def activation_ranges(prog: MILProgram, calib: np.ndarray) -> dict[str, dict[str, float]]:
    """{var name: {"rmin", "rmax"}} over the calibration samples: coremltools' activation_stats format."""
    ranges: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        program = _interpreter(prog, Path(folder))
        (name, (_, shape)), = program.inputs.items()
        batch = shape[0]
        for start in range(0, len(calib) - batch + 1, batch):
            for var, val in program.values({name: calib[start:start + batch]}).items():
                if not (isinstance(val, np.ndarray) and val.dtype.kind == "f"):
                    continue
                lo, hi = float(val.min()), float(val.max())
                seen = ranges.setdefault(var, {"rmin": lo, "rmax": hi})
                seen["rmin"], seen["rmax"] = min(seen["rmin"], lo), max(seen["rmax"], hi)
    for r in ranges.values():
        if max(-r["rmin"], r["rmax"]) < MIN_RANGE:
            r["rmin"], r["rmax"] = -MIN_RANGE, MIN_RANGE
    return ranges
