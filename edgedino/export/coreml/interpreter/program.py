"""Evaluate the main function of a saved ML program op by op in numpy: a reference interpreter, not Apple's runtime.

Constants and the constexpr_* decompression ops are resolved once at load. Every op computes in float32 and its
outputs are rounded to the types the program declares: a float16 tensor holds float16 values (kept in float32
arrays so numpy's BLAS does the arithmetic), so an fp16 program shows the error of fp16 storage between ops, with
float32 accumulation inside an op (matmul, conv, reductions). An op the interpreter does not know is an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgedino.errors import EdgeDinoError
from edgedino.export.coreml.interpreter.ops import OPS
from edgedino.export.coreml.interpreter.package import DTYPES, Blobs, constant, read_spec, shape_of, type_name
from edgedino.export.coreml.interpreter.quant import CONSTEXPR, QUANT
from edgedino.runtime.coreml import model_files

COMPUTE = {**OPS, **QUANT}
VARIADIC = ("values",)  # inputs that always take a list of arguments (concat)


def known_ops() -> list[str]:
    """Every MIL op type the interpreter evaluates."""
    return sorted({"const", *CONSTEXPR, *COMPUTE})


def to_declared(value, mil_type: str):
    """A computed value in the type the program declares: float16 is rounded (and held in float32)."""
    if not isinstance(value, np.ndarray) and not np.isscalar(value):
        return value
    if mil_type == "FLOAT16":
        return np.asarray(value, np.float32).astype(np.float16).astype(np.float32)
    if mil_type in ("FLOAT32", "FLOAT64"):
        return np.asarray(value, np.float32)
    if mil_type in DTYPES:
        return np.asarray(value).astype(DTYPES[mil_type])
    return value


@dataclass
class Step:
    """One op to run: its function, constant inputs, inputs from other ops, and declared outputs."""

    where: str
    fn: object
    fixed: dict
    refs: dict  # input name -> var name, or for variadic inputs a list of var names / constants
    outputs: list[tuple[str, str, tuple[int, ...] | None]]  # (name, MIL type, shape)


class Program:
    """The main function of the ML program at `path`, ready to run."""

    def __init__(self, path: str | Path, name: str | None = None):
        """Read every constant now (nothing is read later); messages call the package `name` (default: its own)."""
        self.path = Path(path)
        self.name = name or self.path.name
        spec = read_spec(self.path)
        self.blobs = Blobs(model_files(self.path)[1])
        fn = spec.mlProgram.functions.get("main")
        if fn is None:
            raise EdgeDinoError(f"{self.name}: the ML program has no main function")
        block = fn.block_specializations[fn.opset]
        self.inputs = {i.name: (type_name(i.type.tensorType), shape_of(i.type.tensorType)) for i in fn.inputs}
        self.output_names = list(block.outputs)
        self.consts: dict[str, object] = {}
        self.steps: list[Step] = []
        for index, op in enumerate(block.operations):
            self._add(index, op)

    def _add(self, index: int, op) -> None:
        outputs = [(o.name, type_name(o.type.tensorType), shape_of(o.type.tensorType)) for o in op.outputs]
        where = f"{self.name}: op #{index} {op.type} -> {outputs[0][0] if outputs else '?'}"
        if op.type == "const":
            self.consts[outputs[0][0]] = to_declared(constant(op.attributes["val"], self.blobs), outputs[0][1])
            return
        if op.type not in CONSTEXPR and op.type not in COMPUTE:
            raise EdgeDinoError(f"{where}: the reference interpreter does not know the MIL op {op.type!r} "
                                f"(it knows: {', '.join(known_ops())})")
        fixed = {k: constant(v, self.blobs) for k, v in op.attributes.items() if k != "name"}
        refs = {}
        for key, arg in op.inputs.items():
            values = [b.name if b.name else constant(b.value, self.blobs) for b in arg.arguments]
            if not any(isinstance(v, str) and v not in self.consts for v in values):
                values = [self.consts[v] if isinstance(v, str) else v for v in values]
                fixed[key] = values if key in VARIADIC else values[0]
            else:
                refs[key] = values if key in VARIADIC else values[0]
        step = Step(where, CONSTEXPR.get(op.type) or COMPUTE[op.type], fixed, refs, outputs)
        if op.type in CONSTEXPR:
            if refs:
                raise EdgeDinoError(f"{where}: a decompression op whose inputs are not constants")
            self.consts[outputs[0][0]] = self._call(step, dict(fixed))[0]
        else:
            self.steps.append(step)

    def _call(self, step: Step, args: dict) -> list:
        """Run one op and check its outputs against the program's declared shapes."""
        try:
            out = step.fn(args)
        except EdgeDinoError as e:
            raise EdgeDinoError(f"{step.where}: {e}") from None
        except (ValueError, IndexError, KeyError, TypeError) as e:
            raise EdgeDinoError(f"{step.where}: cannot evaluate ({type(e).__name__}: {e})") from None
        out = list(out) if isinstance(out, tuple) else [out]
        if len(out) != len(step.outputs):
            raise EdgeDinoError(f"{step.where}: {len(out)} outputs computed, {len(step.outputs)} declared")
        values = []
        for value, (name, mil_type, shape) in zip(out, step.outputs, strict=True):
            if shape is not None and tuple(np.shape(value)) != shape:
                raise EdgeDinoError(f"{step.where}: computed {name} of shape {tuple(np.shape(value))}, "
                                    f"the program declares {shape}")
            values.append(to_declared(value, mil_type))
        return values

    def _arg(self, ref, env: dict):
        if isinstance(ref, list):
            return [self._arg(r, env) for r in ref]
        if not isinstance(ref, str):
            return ref
        if ref in env:
            return env[ref]
        if ref in self.consts:
            return self.consts[ref]
        raise EdgeDinoError(f"{self.name}: the program uses {ref!r} before defining it")

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The program's outputs (float32 arrays) for {input name: array}."""
        values = self.values(feeds)
        return {name: np.asarray(self._arg(name, values), np.float32) for name in self.output_names}

    def values(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every value the program computes (inputs and op outputs, by name) for {input name: array}.

        BLAS runs on one thread: attention's many small batched matmuls are up to 100x slower with a thread pool
        on a busy machine, and one thread is fast enough for a check.
        """
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, "blas"):
            return self._run(feeds)

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        env = {}
        for name, (mil_type, shape) in self.inputs.items():
            if name not in feeds:
                raise EdgeDinoError(f"{self.name}: input {name!r} is missing")
            if shape is not None and tuple(feeds[name].shape) != shape:
                raise EdgeDinoError(f"{self.name} takes {name} of shape {shape}, got {feeds[name].shape}")
            env[name] = to_declared(np.asarray(feeds[name]), mil_type)
        for step in self.steps:
            args = dict(step.fixed)
            args.update({k: self._arg(r, env) for k, r in step.refs.items()})
            for (name, _, _), value in zip(step.outputs, self._call(step, args), strict=True):
                env[name] = value
        return env
