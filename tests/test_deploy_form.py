"""The deploy form (what every exporter converts) equals the training form, and has the shape runtimes run fast:
no qkv split, no RoPE split/concat, no NCHW<->NHWC permutes inside ConvNeXt blocks."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from edgedino.export.module import ExportModule
from edgedino.models import create_model
from edgedino.models.attention import DeployAttention


@pytest.mark.parametrize(("name", "size"), [("vit_test", (64, 96)), ("convnext_test", (64, 96)),
                                            ("vits16", (64, 80)), ("convnext_tiny", (64, 64))])
def test_deploy_form_equals_training_form_in_fp32(name, size, perturb):
    model = perturb(create_model(name).eval(), seed=1)
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        eager = model.forward_features(x)
        deployed = model.deploy(size).forward_features(x)
    kinds = Counter(type(m).__name__ for m in model.modules())
    assert kinds["DeployAttention"] + kinds["DeployConvNeXtBlock"] == len(getattr(model, "blocks", [])) + sum(
        len(s) for s in getattr(model, "stages", []))
    assert kinds["Attention"] == kinds["ConvNeXtBlock"] == kinds["ChannelsFirstLayerNorm"] == 0
    for k in eager:
        assert torch.isfinite(deployed[k]).all()
        torch.testing.assert_close(deployed[k], eager[k], rtol=0, atol=1e-5)


def test_deployed_vit_has_three_linears_and_no_key_bias():
    model = create_model("vit_test").deploy((64, 64))
    attn = model.blocks[0].attn
    assert isinstance(attn, DeployAttention)
    assert attn.q.bias is not None and attn.k.bias is None and attn.v.bias is not None
    prefix, n = 1 + model.cfg.n_registers, 16
    sin, cos = model.rope_embed(4, 4)
    assert sin.shape == cos.shape == (prefix + n, model.cfg.embed_dim)
    assert (sin[:prefix] == 0).all() and (cos[:prefix] == 1).all(), "CLS and registers carry no position"


def _ov_ops(name: str, size: tuple[int, int]) -> Counter:
    import openvino as ov

    module = ExportModule(create_model(name), size)
    model = ov.convert_model(module, example_input=module.example(), input=[tuple(module.input_shape())])
    return Counter(op.get_type_name() for op in model.get_ops())


def test_exported_vit_graph_has_no_split_and_one_concat():
    ops = _ov_ops("vit_test", (64, 64))
    assert ops["VariadicSplit"] == ops["Split"] == 0, ops
    assert ops["Concat"] == 1, "only [CLS, registers, patches]: RoPE adds no concat"
    assert ops["ScaledDotProductAttention"] == len(create_model("vit_test").blocks)


def test_exported_convnext_graph_has_no_permutes_in_blocks():
    ops = _ov_ops("convnext_test", (64, 64))
    assert ops["Transpose"] <= 1, f"only the final (B, C, h*w) -> (B, h*w, C); got {ops['Transpose']}"
    assert ops["Convolution"] >= 2 * sum(create_model("convnext_test").cfg.depths), "pointwise layers are 1x1 convs"


@pytest.mark.parametrize("name", ["vit_test", "convnext_test"])
def test_exported_onnx_gelu_is_one_node(name, tmp_path):
    """GELU reaches onnxruntime as its Gelu op (one fused kernel), not as the Div, Erf, Add, Mul chain."""
    import onnx

    from edgedino.export import export

    result = export(targets="onnx", model=name, imgsz=64, out=tmp_path, log=lambda line: None, verify_outputs=False)
    ops = Counter(n.op_type for n in onnx.load(result.artifacts[0].path).graph.node)
    model = create_model(name)
    count = len(model.blocks) if hasattr(model, "blocks") else sum(model.cfg.depths)
    assert ops["Gelu"] == count and ops["Erf"] == 0, ops


@pytest.mark.parametrize(("kernel", "padding", "bias"),
                         [(7, 3, True), (9, 4, False), (7, 2, True), ((7, 5), (3, 2), True), (6, 3, True), (7, 0, True),
                          (7, 5, False), ((2, 25), (1, 12), True)])
def test_banded_depthwise_equals_the_convolution(kernel, padding, bias):
    from edgedino.models.convnext_deploy import BandedDepthwise, banded_depthwise

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(8, 8, kernel, padding=padding, groups=8, bias=bias),
                              torch.nn.Conv2d(8, 8, 3, padding=1, groups=8))  # 9 taps: runs directly, kept
    x = torch.randn(2, 8, 19, 30)
    with torch.no_grad():
        expected = net(x)
        banded = banded_depthwise(net)
        got = banded(x)
        unbatched = banded(x[0])
    assert [type(m) for m in banded] == [BandedDepthwise, torch.nn.Conv2d] and type(net[0]) is torch.nn.Conv2d
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(unbatched, expected[0], rtol=0, atol=1e-5)


@pytest.mark.parametrize("conv", [
    dict(kernel_size=7, stride=2, padding=3), dict(kernel_size=7, dilation=2, padding=6),
    dict(kernel_size=7, padding=3, padding_mode="reflect"), dict(kernel_size=7, padding="same"),
    dict(kernel_size=(3, 27), padding=(1, 13))])
def test_banded_depthwise_leaves_what_it_cannot_compute(conv):
    from edgedino.models.convnext_deploy import BandedDepthwise, banded_depthwise

    net = torch.nn.Sequential(torch.nn.Conv2d(8, 8, groups=8, **conv), torch.nn.Conv2d(8, 16, 7, padding=3))
    assert banded_depthwise(net) is net and [type(m) for m in net] == [torch.nn.Conv2d] * 2
    with pytest.raises(ValueError, match="stride-1, undilated"):
        BandedDepthwise(8, 8, groups=8, **conv)


def test_tflite_convnext_depthwise_runs_in_xnnpacks_direct_kernel(tmp_path):
    """Every depthwise kernel of the ConvNeXt .tflite has at most 25 taps, and LiteRT's own profiler counts one
    call of XNNPACK's depthwise operator (DWConv) per band and a grouped-GEMM (IGEMM) call only for the dense
    stem and downsampling convolutions; fp32 parity holds."""
    import numpy as np

    from edgedino.bench.litert_profile import delegate_calls, profile_run
    from edgedino.export import export
    from edgedino.export.tflite import graph_ops

    result = export(targets="tflite", model="convnext_test", imgsz=64, out=tmp_path, log=lambda line: None)
    (artifact,) = result.artifacts
    assert artifact.status == "ok" and len(artifact.parity) >= 2, artifact.message
    assert all(p["cosine_mean"] >= 0.9999 for p in artifact.parity), artifact.parity
    graph, ops = graph_ops(artifact.path)
    filters = [graph.tensors[op.inputs[1]].shape for name, op in ops if name == "DEPTHWISE_CONV_2D"]
    depths = create_model("convnext_test").cfg.depths
    assert len(filters) == 3 * sum(depths), "7 rows in bands of 3, 3 and 1"
    assert all(f[1] * f[2] <= 25 for f in filters), filters
    x = np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)
    calls = delegate_calls(profile_run(artifact.path, [x], threads=1, runs=2))
    assert calls.get("Convolution/NHWC, F32 DWConv") == len(filters), calls
    assert calls.get("Convolution/NHWC, F32 IGEMM") == len(depths), "the stem and 3 downsampling convolutions only"
