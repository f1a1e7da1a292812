"""What one export is asked to produce, and the parity thresholds each precision must meet."""

from __future__ import annotations

from dataclasses import dataclass, field

PRECISIONS = ("fp32", "fp16", "int8-weights", "int8", "palettize4")
PRECISION_HELP = {
    "fp32": "float32 weights and compute",
    "fp16": "float16 weights (and compute where the runtime does it)",
    "int8-weights": "int8 weights, float activations (dynamic range / weight-only)",
    "int8": "int8 weights and activations, calibrated on real images",
    "palettize4": "4-bit palettized weights (16-entry look-up tables; Core ML)",
}
# Minimum mean cosine similarity of the cls and patch tokens (and a head's logits) against PyTorch fp32.
THRESHOLDS = {"fp32": 0.9999, "fp16": 0.999, "int8-weights": 0.995, "int8": 0.99, "palettize4": 0.98}
INPUT_FORMATS = ("float32", "uint8")
VERIFY_IMAGES = 8  # images every artifact is verified on (export, verify, compare, the benchmark's parity)
GUARDED = ("int8", "palettize4")  # precisions whose layers the int8 policy may keep in float
INT8_POLICIES = {
    "auto": "keep the fewest, most sensitive layers in float until cls and patch parity meet the threshold",
    "strict": "quantize every layer; below the threshold the export fails",
    "report": "quantize every layer and print each layer's sensitivity",
}


@dataclass(frozen=True)
class QuantPlan:
    """How a quantized export departs from quantizing every layer: layers kept in float, and SmoothQuant."""

    policy: str = "auto"
    float_layers: tuple[str, ...] = ()  # backbone-relative layer names, e.g. "blocks.4.mlp.fc2"
    smoothquant_alpha: float | None = None  # None: no SmoothQuant migration


@dataclass(frozen=True)
class ExportSpec:
    """One artifact: target x precision at a fixed input size."""

    target: str
    precision: str
    imgsz: tuple[int, int]
    input_format: str = "float32"  # float32: NCHW normalised; uint8: NHWC RGB 0-255, normalisation inside
    batch: int = 1  # static batch size of the artifact
    dynamic: bool = False  # dynamic batch where the target supports it (ONNX)
    options: dict = field(default_factory=dict, compare=False)  # target options, e.g. from a recipe
    quant: QuantPlan = QuantPlan()  # int8 / palettize4 only

    @property
    def threshold(self) -> float:
        return THRESHOLDS[self.precision]

    def filename(self, model: str) -> str:
        h, w = self.imgsz
        size = f"{h}" if h == w else f"{h}x{w}"
        fmt = "_u8" if self.input_format == "uint8" else ""
        batch = f"_b{self.batch}" if self.batch > 1 else ""
        return f"{model}_{size}{batch}_{self.precision}{fmt}"
