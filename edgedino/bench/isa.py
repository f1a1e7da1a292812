"""AVX2-only runs: the environment that limits a runtime to AVX2 (what most edge x86 boxes have) on a machine with
AVX-512, and the check, inside the worker, that the limit took effect.

- PyTorch: ONEDNN_MAX_CPU_ISA limits only oneDNN (convolutions); ATen's own kernels follow ATEN_CPU_CAPABILITY
  and MKL's GEMMs (every nn.Linear) MKL_ENABLE_INSTRUCTIONS, so all three are set. The check reads ATen's
  capability (and, for torch.compile, the vector ISA inductor generates code for, which follows
  ATEN_CPU_CAPABILITY); oneDNN and MKL do not tell Python which ISA they run.
- OpenVINO: its CPU plugin's oneDNN reads ONEDNN_MAX_CPU_ISA; the check reads the kernel names of the perf
  counters (`brgemm_avx2_*` against `brgemm_avx512_*`, `*_amx_*`). Its MLAS GEMMs (`gemm_mlas_f32`, fp32
  FullyConnected) name no ISA and pick their own from CPUID: counted and said, not checked.
"""

from __future__ import annotations

from pathlib import Path

ENV = {
    "torch": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "openvino": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
}
RUNTIMES = {"torch": "torch", "torch.compile": "torch", "openvino": "openvino", "peer-openvino": "openvino"}
WIDER = ("avx512", "amx")  # kernel-name parts of ISAs beyond AVX2


def env(target: str, scratch: Path) -> dict[str, str] | None:
    """The AVX2-only environment of a benchmark target's runtime, or None where it has no AVX2-only run. PyTorch's
    compiles into an inductor cache of its own under `scratch`: torch 2.13 reuses kernels cached for AVX-512
    under ATEN_CPU_CAPABILITY=avx2, and they return NaN."""
    if target not in RUNTIMES:
        return None
    extra = {"TORCHINDUCTOR_CACHE_DIR": str(scratch / "inductor-avx2")} if RUNTIMES[target] == "torch" else {}
    return ENV[RUNTIMES[target]] | extra


def unavailable(precision: str, flags: list[str]) -> str | None:
    """Why a row whose runtime has an AVX2-only run gets none here, or None when it does."""
    if precision == "bf16":
        return "no AVX2-only run of bf16: AVX2 CPUs have no bf16 compute"
    if "avx512f" not in flags:
        return "this CPU has no AVX-512: its normal run is already AVX2 at most"
    return None


def check_torch(compiled: bool) -> dict:
    """{"ok": bool, "note": ...} for PyTorch in this process; for torch.compile also inductor's vector ISA."""
    import torch

    capability = torch.backends.cpu.get_cpu_capability()
    seen = [f"ATen capability {capability}"]
    ok = capability == "AVX2"
    if compiled:
        from torch._inductor.cpu_vec_isa import pick_vec_isa

        vec = str(pick_vec_isa())
        seen.append(f"inductor vector ISA {vec}")
        ok = ok and not any(isa in vec for isa in WIDER)
    return {"ok": ok, "note": "; ".join(seen) + "; oneDNN and MKL limited by their variables (not readable from "
                                                "Python)"}


def check_openvino(kernels: list[str]) -> dict:
    """{"ok": bool, "note": ...} from the OpenVINO perf counters' "node type/kernel" names of one inference."""
    wider = sorted({k for k in kernels if any(isa in k.lower() for isa in WIDER)})
    mlas = sum("mlas" in k.lower() for k in kernels)
    if wider:
        return {"ok": False, "note": f"{len(wider)} kernel types beyond AVX2 still ran: {', '.join(wider[:6])}"}
    note = "no avx512/amx kernel in the perf counters"
    return {"ok": True, "note": note + (f"; {mlas} MLAS GEMM kernel types name no ISA" if mlas else "")}
