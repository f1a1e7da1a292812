"""Outlier-aware int8 on tiny presets: the stress weights, the SmoothQuant fold (exact in float), the simulated
per-layer sensitivity, and the int8 policy's choices."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from edgedino.bench.outlier_stats import statistics
from edgedino.bench.stress_weights import base_weights, sample_batch, stress
from edgedino.export.int8_policy import guarded, next_count, plan_precision
from edgedino.export.module import ExportModule
from edgedino.export.observe import observe, quantizable_layers
from edgedino.export.simulate import fake_activation, fake_weight_palette
from edgedino.export.smooth import apply_smoothing, smoothing_scales
from edgedino.export.spec import QuantPlan
from edgedino.export.target import Int8Scheme
from edgedino.runtime.frames import HOLDOUT, model_inputs, read_frames

SIZE = (64, 64)


@pytest.fixture(scope="module", params=["vit_test", "convnext_test"])
def stressed(request):
    """(name, base model, severity-10 model) calibrated on the shipped photos."""
    base = base_weights(request.param, seed=0)
    return request.param, base, stress(copy.deepcopy(base), 10.0, sample_batch(64), seed=0)


@pytest.fixture(scope="module")
def images():
    calib = model_inputs(read_frames(None, 8), SIZE)
    heldout = model_inputs(read_frames(HOLDOUT, 8), SIZE)
    return calib, heldout


def test_stress_weights_have_the_outliers_and_sane_features(stressed):
    name, base, net = stressed
    before, after = statistics(base, sample_batch(64)), statistics(net, sample_batch(64))
    hidden = "fc2 input" if name.startswith("vit") else "pwconv2 input"
    assert after[hidden] > 50 * before[hidden]  # massive MLP hidden units
    residual = [k for k in after if k.startswith("residual after")]
    assert after[residual[-1]] > 10 * before[residual[-1]]  # residual outlier channels...
    assert after[residual[-1]] > after[residual[0]]  # ...growing with depth
    assert after["output patch tokens"] < 5 * before["output patch tokens"]  # the final norm shrinks them
    assert after["sanity: finite"] == 1.0 and after["sanity: token cos to image mean"] < 0.95
    if name.startswith("vit"):
        assert after["register / patch token norm"] > 2.5 > before["register / patch token norm"]


def test_weights_without_outliers_get_no_smoothing(images):
    """Norm outputs without standing-out channels are left alone, so such weights export exactly as before."""
    module = ExportModule(base_weights("vit_test", 0), SIZE)
    assert smoothing_scales(module, images[0]) == {}


def test_severity_zero_leaves_the_weights_alone():
    base = base_weights("vit_test", seed=0)
    same = stress(copy.deepcopy(base), 0.0, sample_batch(64))
    assert all(torch.equal(a, b) for a, b in zip(base.state_dict().values(), same.state_dict().values(),
                                                  strict=True))


@pytest.mark.parametrize("inside", [False, True])
def test_smoothquant_fold_is_exact_in_float_and_evens_out_the_channels(stressed, images, inside):
    name, _, net = stressed
    calib, heldout = images
    module = ExportModule(copy.deepcopy(net), SIZE)
    smoothed = copy.deepcopy(module)
    scales = smoothing_scales(smoothed, calib)
    apply_smoothing(smoothed, scales, inside_norm=inside)
    assert len(scales) == len(module.backbone.norm_consumers())  # every norm sees the outlier channels here
    assert max(float(s.max() / s.min()) for s in scales.values()) > 100  # the fold really moves something
    x = torch.from_numpy(heldout)
    with torch.no_grad():
        for a, b in zip(module(x), smoothed(x), strict=True):
            assert torch.allclose(a, b, atol=1e-4, rtol=1e-4), float((a - b).abs().max())
    layers = [c for _, consumers in module.backbone.norm_consumers() for c in consumers]
    ratio = lambda m: max(s.input.outlier_ratio for n, s in observe(  # noqa: E731
        m, quantizable_layers(m), [torch.from_numpy(calib)]).items() if n in layers)
    assert ratio(smoothed) < ratio(module) / 10


@pytest.mark.parametrize("target,inside", [("onnx", False), ("tflite", True)])
def test_fp32_export_of_the_smoothed_module_matches_pytorch(target, inside, tmp_path, images):
    """The fold inherited by a converter: the fp32 artifact of the smoothed module (the scales in the norm gains
    for ONNX, inside the normalisation for TFLite) against the unsmoothed PyTorch model, within 1e-4."""
    from edgedino.export.metadata import build_metadata
    from edgedino.export.smooth import ScaledLayerNorm
    from edgedino.export.spec import ExportSpec
    from edgedino.export.target import Conversion, get_target
    from edgedino.runtime import load

    calib, heldout = images
    net = stress(base_weights("vit_test", 0), 10.0, sample_batch(64))
    module = ExportModule(copy.deepcopy(net), SIZE)
    smoothed = copy.deepcopy(module)
    apply_smoothing(smoothed, smoothing_scales(smoothed, calib), inside_norm=inside)
    assert any(isinstance(m, ScaledLayerNorm) for m in smoothed.modules()) == inside
    spec = ExportSpec(target, "fp32", SIZE)
    path = tmp_path / f"s{get_target(target).suffix}"
    get_target(target).convert(Conversion(smoothed, spec, None, build_metadata(smoothed, spec)), path)
    runtime = load(path)
    with torch.no_grad():
        expected = module(torch.from_numpy(heldout))
    for i, x in enumerate(heldout):
        got = runtime.run(x[None])
        for name, want in zip(module.output_names, expected, strict=True):
            assert np.abs(got[name] - want[i:i + 1].numpy()).max() < 1e-4, name


def test_sensitivity_ranks_the_massive_units_first_and_predicts_parity(stressed, images):
    name, _, net = stressed
    calib, heldout = images
    module = ExportModule(copy.deepcopy(net), SIZE)
    plan = plan_precision("int8", "auto", module, calib, heldout, log=print)
    table = plan.table(Int8Scheme())
    hidden = ".mlp.fc2" if name.startswith("vit") else ".pwconv2"
    assert hidden in table[0].layer  # the massive hidden units
    assert [s.error for s in table] == sorted((s.error for s in table), reverse=True)
    sim, ranked = plan.simulator(Int8Scheme()), [s.layer for s in table]
    cls = [sim.parity(ranked[k:])[0] for k in (0, 1, len(ranked))]
    assert cls[0] < cls[1] < cls[2] == pytest.approx(1.0)
    assert plan.first_count(Int8Scheme(), ranked, threshold=0.5) == 0
    assert plan.first_count(Int8Scheme(), ranked, threshold=0.9999) >= 1


def test_depthwise_layers_are_not_ranked_where_the_target_keeps_them_float(images):
    calib, heldout = images
    module = ExportModule(base_weights("convnext_test", 0), SIZE)
    plan = plan_precision("int8", "auto", module, calib, heldout, log=print)
    tflite = {s.layer for s in plan.table(Int8Scheme(outputs=True, depthwise=False))}
    onnx = {s.layer for s in plan.table(Int8Scheme())}
    assert onnx - tflite == {n for n in onnx if n.endswith("dwconv")} != set()


def test_simulated_quantizers():
    x = torch.linspace(-1, 3, 1000)
    err = (fake_activation(x, -1.0, 3.0) - x).abs().max()
    assert 0 < err <= 4 / 255 / 2 + 1e-6
    assert (fake_activation(x, -1.0, 3.0, symmetric=True) - x).abs().max() <= 6 / 255 / 2 + 1e-6
    w = torch.randn(64, 32, generator=torch.Generator().manual_seed(0))
    assert len(torch.unique(fake_weight_palette(w))) <= 16
    # 16 Lloyd levels on a Gaussian err by about 0.098 of the mean |w| (0.099 here); 16 even steps over +-4 sigma
    # would err by about 0.16
    assert (fake_weight_palette(w) - w).abs().mean() < 0.11 * w.abs().mean()


def test_next_count_doubles_up_to_all():
    assert [next_count(k, 10) for k in (0, 1, 2, 3, 6, 9)] == [1, 2, 4, 6, 10, 10]


class _Plan(SimpleNamespace):
    """A precision plan whose ranking and prediction are given: the policy's choices alone."""

    tables = 0
    precision = "int8"

    def table(self, scheme):
        self.tables += 1
        return [SimpleNamespace(layer=f"l{i}") for i in range(self.n)]

    def simulator(self, scheme):
        return SimpleNamespace(eligible=[f"l{i}" for i in range(self.n)])

    def clears(self, scheme, quantized, threshold):
        return self.first == 0

    def first_count(self, scheme, ranked, threshold):
        return self.first


def _make(passes_from: int, calls: list):
    """make(QuantPlan) standing in for export + verify: passes once `passes_from` layers are float."""

    def make(quant: QuantPlan):
        calls.append(quant)
        ok = len(quant.float_layers) >= passes_from
        return SimpleNamespace(status="ok" if ok else "verify-failed", tries=[],
                               parity=[{"output": "cls", "cosine_mean": 0.995 if ok else 0.9},
                                       {"output": "patch_tokens", "cosine_mean": 0.995 if ok else 0.95}])

    return make


@pytest.mark.parametrize("first,passes_from,tried", [
    (0, 0, [0]), (2, 2, [2]), (0, 3, [0, 1, 2, 4, 3]),
    (1, 99, [1, 2, 4, 8, 9]),  # never all 10: one layer stays int8, and the export fails
    (10, 99, [9]),  # the simulation asks for all 10: one stays int8 all the same
    (1, 5, [1, 2, 4, 8, 6, 5]),  # the doubling overshoots to 8: bisected down to 5
    (1, 6, [1, 2, 4, 8, 6, 5, 6]),  # the last bisection try failed: the fewest that passed (6) is exported again
])
def test_auto_starts_where_the_simulation_says_doubles_until_it_passes_then_bisects(first, passes_from, tried):
    calls, plan = [], _Plan(policy="auto", alpha=0.5, n=10, first=first)
    result = guarded(plan, Int8Scheme(), 0.99, _make(passes_from, calls), print)
    assert [len(q.float_layers) for q in calls] == tried
    assert plan.tables == (0 if tried == [0] else 1)  # the ranking is measured only when it is needed
    assert [t["float_layers"] for t in result.tries] == tried
    assert all(q.float_layers == tuple(f"l{i}" for i in range(len(q.float_layers))) for q in calls)
    assert result.status == ("ok" if passes_from <= 9 else "verify-failed")
    assert len(calls[-1].float_layers) == min(passes_from, 9)  # what stays published: the fewest that passed


@pytest.mark.parametrize("policy", ["strict", "report"])
def test_strict_and_report_quantize_everything_once(policy):
    calls = []
    result = guarded(_Plan(policy=policy, alpha=0.5, n=10, first=3), Int8Scheme(), 0.99, _make(5, calls), print)
    assert [q.float_layers for q in calls] == [()] and calls[0].policy == policy
    assert result.status == "verify-failed"



def test_convnext_tiny_outliers_break_int8_and_auto_finds_the_float_layers(images):
    """The real ConvNeXt-T architecture with severity-3 outliers, in the simulation of per-tensor int8 (its exports
    in every runtime are benchmarks/int8_outliers.py's): quantizing everything without SmoothQuant falls below 0.99;
    with SmoothQuant the auto policy's first choice of float layers reaches it without keeping them all."""
    from edgedino.bench.stress_weights import stress_weights

    calib, heldout = images
    module = ExportModule(stress_weights("convnext_tiny", 3.0, size=SIZE[0]), SIZE)
    scheme = Int8Scheme()
    plain = plan_precision("int8", "auto", module, calib, heldout, log=print, smoothquant=None).simulator(scheme)
    assert min(plain.parity(plain.eligible)) < 0.99
    plan = plan_precision("int8", "auto", module, calib, heldout, log=print)
    ranked = [s.layer for s in plan.table(scheme)]
    count = plan.first_count(scheme, ranked, 0.99)
    print(f"convnext_tiny severity 3: {count} of {len(ranked)} layers float: {ranked[:count]}")
    assert 0 < count < len(ranked)
    assert min(plan.simulator(scheme).parity(ranked[count:])) >= 0.99


def test_onnx_scheme_says_what_onnxruntime_quantizes(tmp_path):
    """The simulation is only as good as its scheme: onnxruntime's QDQ quantizer puts every quantized Conv's and
    MatMul's output through QuantizeLinear too, so the ONNX target's scheme must say `outputs` (it once did not, and
    auto kept 32 of ConvNeXt-T's 58 layers float where the simulation had promised 8)."""
    import onnx

    from edgedino.export import export
    from edgedino.export.target import get_target

    result = export(targets="onnx", model="convnext_test", precisions="int8", imgsz=SIZE, int8_policy="strict",
                    out=tmp_path, log=lambda line: None, verify_outputs=False)
    graph = onnx.load(result.artifacts[0].path).graph
    producer = {o: n for n in graph.node for o in n.output}
    consumers = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n.op_type)
    layers = [n for n in graph.node if n.op_type in ("Conv", "MatMul")
              and producer.get(n.input[0]) is not None and producer[n.input[0]].op_type == "DequantizeLinear"]
    assert layers, "no quantized layer found"
    quantized_out = {n.name: consumers.get(n.output[0]) == ["QuantizeLinear"] for n in layers}
    assert all(quantized_out.values()) == get_target("onnx").int8.outputs, quantized_out


def test_onnx_int8_keeps_attention_float_so_softmax_is_not_quantized(tmp_path):
    """The linear layers of a ViT are int8 and attention's activation x activation MatMuls stay float, so
    onnxruntime's optimized graph (as it runs) has float Softmax and no QLinearSoftmax, which took 40 % of
    ViT-S/16 int8 at 448 when attention was quantized."""
    import onnx
    import onnxruntime as ort

    from edgedino import create_model
    from edgedino.export import export

    result = export(targets="onnx", model="vit_test", precisions="int8", imgsz=SIZE, int8_policy="strict",
                    out=tmp_path, log=lambda line: None, verify_outputs=False)
    graph = onnx.load(result.artifacts[0].path).graph
    producer = {o: n.op_type for n in graph.node for o in n.output}
    matmuls = [[producer.get(i) for i in n.input[:2]] for n in graph.node if n.op_type == "MatMul"]
    quantized = [m for m in matmuls if "DequantizeLinear" in m]
    attention = [m for m in matmuls if "DequantizeLinear" not in m]
    depth = create_model("vit_test").cfg.depth
    assert len(quantized) == 6 * depth and len(attention) == 2 * depth, (quantized, attention)  # qkv, proj, fc1/2
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(result.artifacts[0].path, options, providers=["CPUExecutionProvider"])
    ops = {n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node}
    assert "QLinearSoftmax" not in ops and "Softmax" in ops and "QLinearMatMul" in ops, ops
