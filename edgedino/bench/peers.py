"""By-hand peer paths: what a user would do without edgedino, from the same weights, as benchmark rows.

Each peer takes Hugging Face transformers' `DINOv3ViTModel` / `DINOv3ConvNextModel` holding our weights (written
through edgedino.hf_layout) and runs one converter and its quantizer with their documented defaults:

- peer-openvino: `ov.convert_model` + `nncf.quantize` (model_type=TRANSFORMER for a ViT, as NNCF's docs advise);
- peer-onnx: `torch.onnx.export` + onnxruntime `quantize_static` (QDQ, per-tensor int8, MinMax);
- peer-litert: `litert_torch.convert` with litert-torch's own PT2E quantizer (symmetric static int8).

Calibration uses the same frames as edgedino's int8 exports. The peers' output is transformers'
`last_hidden_state` ([CLS or pooled token, registers, patches], after the final norm); `split` turns it into
edgedino's cls and patch_tokens so parity is measured the same way as every other row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgedino.errors import EdgeDinoError

if TYPE_CHECKING:  # the command line reads PEERS without loading numpy
    import numpy as np


@dataclass(frozen=True)
class Peer:
    name: str  # the benchmark target: peer-openvino
    suffix: str  # the artifact's file suffix
    runtime: str  # the edgedino runtime module that runs the file
    how: str  # the by-hand path, for the report
    build: Callable[[object, np.ndarray, Path], None]  # (transformers model, calibration inputs, path to write)
    colour: str  # in benchmark plots


def hf_model(weights: Path, folder: Path):
    """transformers' DINOv3 model holding the weights in `weights` (saved once as a HF folder at `folder`)."""
    from transformers import AutoModel

    from edgedino.checkpoints import load_backbone, save_backbone

    if not (folder / "config.json").exists():
        save_backbone(load_backbone(weights), folder, "hf")
    return AutoModel.from_pretrained(folder).eval()


def _last_hidden(model):
    """The model's last_hidden_state alone, as a user exporting it for its features would take it."""
    import torch

    class LastHidden(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, pixel_values):
            return self.model(pixel_values=pixel_values).last_hidden_state

    return LastHidden().eval()


def build_openvino(model, calib: np.ndarray, path: Path) -> None:
    import nncf
    import openvino as ov
    import torch

    example = torch.from_numpy(calib[:1])
    ov_model = ov.convert_model(model, example_input=example, input=[tuple(example.shape)])  # static, as ours
    vit = model.config.model_type == "dinov3_vit"
    quantized = nncf.quantize(ov_model, nncf.Dataset(list(calib), lambda s: s[None]),
                              model_type=nncf.ModelType.TRANSFORMER if vit else None)
    ov.save_model(quantized, str(path))


def build_onnx(model, calib: np.ndarray, path: Path) -> None:
    import torch
    from onnxruntime.quantization import CalibrationDataReader, quantize_static

    fp32 = path.with_name(path.stem + "_fp32.onnx")
    torch.onnx.export(_last_hidden(model), (torch.from_numpy(calib[:1]),), str(fp32), input_names=["pixel_values"],
                      output_names=["last_hidden_state"])

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.samples = iter(calib)

        def get_next(self):
            x = next(self.samples, None)
            return None if x is None else {"pixel_values": x[None]}

    quantize_static(str(fp32), str(path), Reader())


def build_litert(model, calib: np.ndarray, path: Path) -> None:
    import litert_torch
    import torch
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    example = (torch.from_numpy(calib[:1]),)
    quantizer = PT2EQuantizer().set_global(get_symmetric_quantization_config())
    prepared = prepare_pt2e(torch.export.export(_last_hidden(model), example).module(), quantizer)
    with torch.inference_mode():
        for x in calib:
            prepared(torch.from_numpy(x[None]))
    converted = convert_pt2e(prepared, fold_quantize=False)
    litert_torch.convert(converted, example, quant_config=QuantConfig(pt2e_quantizer=quantizer)).export(str(path))


PEERS: dict[str, Peer] = {p.name: p for p in (
    Peer("peer-openvino", ".xml", "edgedino.runtime.openvino", "transformers -> ov.convert_model -> nncf.quantize",
         build_openvino, "tab:pink"),
    Peer("peer-onnx", ".onnx", "edgedino.runtime.onnx", "transformers -> torch.onnx.export -> onnxruntime "
         "quantize_static", build_onnx, "tab:cyan"),
    Peer("peer-litert", ".tflite", "edgedino.runtime.tflite", "transformers -> litert_torch.convert with its PT2E "
         "quantizer", build_litert, "tab:olive"),
)}


def split(outputs: dict[str, np.ndarray], imgsz: tuple[int, int], stride: int) -> dict[str, np.ndarray]:
    """edgedino's cls and patch_tokens (B, h, w, D) from a peer's last_hidden_state (B, prefix + h*w, D)."""
    hidden = [v for v in outputs.values() if v.ndim == 3]
    if len(hidden) != 1:
        raise EdgeDinoError(f"a peer artifact should have one (batch, tokens, dim) output, it has "
                            f"{', '.join(f'{k} {v.shape}' for k, v in outputs.items())}")
    h, w = imgsz[0] // stride, imgsz[1] // stride
    tokens = hidden[0]
    if tokens.shape[1] <= h * w:
        raise EdgeDinoError(f"a peer's output has {tokens.shape[1]} tokens, fewer than the {h}x{w} patches and a cls")
    return {"cls": tokens[:, 0], "patch_tokens": tokens[:, -h * w:].reshape(len(tokens), h, w, -1)}
