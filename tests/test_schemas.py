"""Every JSON edgedino writes, produced for real with the tiny presets and validated against the JSON Schema the
package ships (edgedino/schemas); each schema can fail; the busy-machine warning, eval's progress line and the verify
table without export times."""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import jsonschema
import pytest

from edgedino.cli import main
from edgedino.schemas import VERSIONS, load_schema, schema_file

IMGSZ = "64"


def validate(name: str, document: dict) -> None:
    jsonschema.validate(document, load_schema(name), cls=jsonschema.Draft202012Validator,
                        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    assert document["schema_version"] == VERSIONS[name]


def head_file(task: str, folder: Path) -> Path:
    """A head of `task` on vit_test's seed-0 random backbone, untrained (its weights do not matter to a schema)."""
    from edgedino.checkpoints import load_backbone
    from edgedino.heads.head import Head, HeadConfig
    from edgedino.heads.store import BackboneRecord, save_head

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        backbone = load_backbone(None, "vit_test")
    head = Head(HeadConfig(task, "linear", backbone.cfg.embed_dim, ("sky", "ground")))
    record = BackboneRecord.of(backbone, (int(IMGSZ), int(IMGSZ)), seed=0)
    return save_head(folder / f"{task}.pth", head, record, {})


@pytest.fixture(scope="module")
def made(tmp_path_factory, image_paths):
    """Every output, written by the commands and apps themselves: name -> parsed JSON (a list of lines for JSONL)."""
    from edgedino.apps import classify, segment, track
    from edgedino.runtime import load

    d = tmp_path_factory.mktemp("outputs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGEDINO_CACHE", str(d / "cache"))
        assert main(["export", "--target", "onnx", "--model", "vit_test", "--imgsz", IMGSZ, "--out", str(d / "x"),
                     "--json", str(d / "export.json")]) == 0
        artifact = d / "x" / f"vit_test_{IMGSZ}_fp32.onnx"
        assert main(["verify", str(artifact), "--json", str(d / "verify.json")]) == 0
        twin = d / "twin.onnx"  # compare refuses a file against itself: a byte copy is another file
        twin.write_bytes(artifact.read_bytes())
        assert main(["compare", str(artifact), str(twin), "--json", str(d / "compare.json")]) == 0
        for i, p in enumerate(image_paths[:8]):
            (d / "data" / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
            (d / "data" / f"c{i % 2}" / p.name).write_bytes(p.read_bytes())
        for protocol in ("knn", "linear"):
            assert main(["eval", protocol, "--data", str(d / "data"), "--weights", str(artifact), "--imgsz", IMGSZ,
                         "--json", str(d / f"eval_{protocol}.json")]) == 0
        assert main(["benchmark", "--model", "vit_test", "--imgsz", IMGSZ, "--target", "torch", "--iters", "3",
                     "--warmup", "1", "--threads", "1", "--json", str(d / "benchmark.json")]) == 0
        assert main(["benchmark", "tracking", "--data", "synth:1", "--model", str(artifact), "--threads", "1",
                     "--json", str(d / "tracking.json")]) == 0
        synth = next((d / "cache" / "tracking").glob("synth-1-*"))
        frames, mask = next((synth / "JPEGImages" / "480p").iterdir()), next((synth / "Annotations" / "480p").iterdir())
        run = ["--source", str(frames), "--headless", "--max-frames", "3", "--threads", "1"]
        assert track.main(["--model", str(artifact), "--mask", str(next(mask.iterdir())), *run,
                           "--json", str(d / "track.jsonl")]) == 0
        for task, app in (("classify", classify), ("segment", segment)):
            assert main(["export", "--target", "onnx", "--head", str(head_file(task, d)), "--out", str(d / task),
                         "--no-verify"]) == 0
            with_head = next((d / task).glob("*.onnx"))
            assert app.main(["--model", str(with_head), *run, "--json", str(d / f"{task}.jsonl")]) == 0
        tiny = ["--data", str(d / "data"), "--preset", "tiny-cpu"]
        assert main(["pretrain", *tiny, "--out", str(d / "pre"), "--max-steps", "3", "run.batch=4", "data.workers=0",
                     "gram.start=2", "gram.refresh_every=2"]) == 0
        for kind, teacher in (("heads", "checkpoint.pth"), ("features", "backbone.pth")):
            assert main(["distill", *tiny, "--teacher-weights", str(d / "pre" / teacher), "--student", "vit_test",
                         "--out", str(d / f"distill-{kind}"), "--max-steps", "1", "run.batch=4",
                         "data.workers=0"]) == 0
    lines = {n: [json.loads(t) for t in (d / f"{n}.jsonl").read_text().splitlines()] for n in TASK_APPS}
    lines["train-metrics"] = [json.loads(t) for run in ("pre", "distill-heads", "distill-features")
                              for t in (d / run / "metrics.jsonl").read_text().splitlines()]
    outputs = {n: json.loads((d / f"{f}.json").read_text()) for n, f in FILES.items()}
    return {**outputs, **{n if n == "train-metrics" else f"{n}-jsonl": v for n, v in lines.items()}, "dir": d,
            "artifact-metadata": [load(artifact).metadata, load(next((d / "classify").glob("*.onnx"))).metadata]}


TASK_APPS = ("track", "classify", "segment")
FILES = {"export": "export", "verify": "verify", "compare": "compare", "eval-knn": "eval_knn",
         "eval-linear": "eval_linear", "benchmark": "benchmark", "benchmark-tracking": "tracking"}


def documents(made: dict, name: str) -> list[dict]:
    """The produced documents of output `name` (several for JSONL and for outputs made more than one way)."""
    if name == "eval":
        return [made["eval-knn"], made["eval-linear"]]
    return made[name] if isinstance(made[name], list) else [made[name]]


@pytest.mark.parametrize("name", list(VERSIONS))
def test_each_output_matches_its_shipped_schema(made, name):
    docs = documents(made, name)
    assert docs, f"no {name} output was produced"
    for doc in docs:
        validate(name, doc)


def test_training_metrics_schema_names_only_keys_the_runs_write(made):
    """pretrain (every term live, Gram from step 2) and distill with head and with feature targets together write
    every key the schema names, except the GPU-only one: the schema describes the runs as they are."""
    import re

    schema = load_schema("train-metrics")
    written = {k for doc in made["train-metrics"] for k in doc}
    assert set(schema["properties"]) - written == {"gpu_memory_gb"}
    (pattern,) = schema["patternProperties"]
    student_terms = {k for k in written if re.fullmatch(pattern, k)}
    assert student_terms == {f"vit_test.{t}" for t in ("cls", "patch", "dino", "ibot", "koleo")}, student_terms


def test_jsonl_lines_are_one_per_frame_with_seconds(made):
    for app in TASK_APPS:
        lines = made[f"{app}-jsonl"]
        assert [x["frame"] for x in lines] == [0, 1, 2], app
        assert all(x["t"] >= 0 for x in lines)
    assert "seconds" in load_schema("track-jsonl")["properties"]["t"]["description"]


def test_int8_metadata_matches_its_schema():
    """The quantized branch of the metadata (an int8 export is too slow here: build_metadata itself, as export
    calls it)."""
    from edgedino.checkpoints import load_backbone
    from edgedino.export.metadata import build_metadata
    from edgedino.export.module import ExportModule
    from edgedino.export.spec import ExportSpec, QuantPlan

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        backbone = load_backbone(None, "convnext_test")
    spec = ExportSpec("openvino", "int8", (64, 64), "uint8", quant=QuantPlan("auto", ("stages.1.0.pwconv1",), 0.5))
    meta = build_metadata(ExportModule(backbone, (64, 64), "uint8"), spec)
    assert meta["quantization"]["float_layers"] == ["stages.1.0.pwconv1"]
    validate("artifact-metadata", json.loads(json.dumps(meta)))


def resolve(schema: dict, root: dict) -> dict:
    """A local "$ref": "#/$defs/x" followed to its definition."""
    ref = schema.get("$ref", "")
    return resolve(root["$defs"][ref.split("/")[-1]], root) if ref.startswith("#/$defs/") else schema


def required_paths(schema: dict, doc, root: dict, at: tuple = ()) -> list[tuple]:
    """Where each required key of `doc` sits (its path of keys and list indices), through nested objects and the
    first item of arrays."""
    schema = resolve(schema, root)
    found = []
    if isinstance(doc, dict):
        for key in schema.get("required", []):
            found.append((*at, key))
            sub = schema.get("properties", {}).get(key)
            if isinstance(sub, dict) and key in doc:
                found += required_paths(sub, doc[key], root, (*at, key))
    elif isinstance(doc, list) and doc and isinstance(resolve(schema, root).get("items"), dict):
        found += required_paths(schema["items"], doc[0], root, (*at, 0))
    return found


def numbers(doc, at: tuple = ()) -> list[tuple]:
    """The path of every number in `doc` (bools excluded)."""
    if isinstance(doc, dict):
        return [p for k, v in doc.items() for p in numbers(v, (*at, k))]
    if isinstance(doc, list):
        return [p for i, v in enumerate(doc) for p in numbers(v, (*at, i))]
    return [at] if isinstance(doc, (int, float)) and not isinstance(doc, bool) else []


def changed(doc, path: tuple, value=None, delete: bool = False):
    """A deep copy of `doc` with the item at `path` deleted or set to `value`."""
    doc = copy.deepcopy(doc)
    *parents, last = path
    node = doc
    for key in parents:
        node = node[key]
    if delete:
        del node[last]
    else:
        node[last] = value
    return doc


@pytest.mark.parametrize("name", list(VERSIONS))
def test_each_schema_rejects_a_missing_key_a_wrong_type_and_a_stray_key(made, name):
    """So the check can fail: every required key dropped in turn, every number turned into a string in turn, the
    wrong version, and (where the schema is closed) a key it does not know."""
    schema = load_schema(name)
    validator = jsonschema.Draft202012Validator(schema)
    for doc in documents(made, name):
        assert validator.is_valid(doc)
        paths = required_paths(schema, doc, schema)
        assert ("schema_version",) in paths and len(paths) > 3, paths
        for path in paths:
            assert not validator.is_valid(changed(doc, path, delete=True)), f"{name} accepts no {path}"
        for path in numbers(doc):
            assert not validator.is_valid(changed(doc, path, "1")), f"{name} accepts a string at {path}"
        for wrong in ("1", VERSIONS[name] + 1):
            assert not validator.is_valid({**doc, "schema_version": wrong}), f"{name} accepts version {wrong!r}"
        assert schema["additionalProperties"] is False
        assert not validator.is_valid({**doc, "unexpected_key": 1}), f"{name} accepts a key it does not know"


def test_every_schema_is_valid_draft_2020_12_and_shipped_in_the_package():
    from importlib import resources

    shipped = {p.name for p in resources.files("edgedino.schemas").iterdir() if p.name.endswith(".schema.json")}
    assert shipped == {schema_file(n) for n in VERSIONS}, "a schema file without an output, or the reverse"
    for name in VERSIONS:
        schema = load_schema(name)
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["properties"]["schema_version"]["const"] == VERSIONS[name], name
        assert name in schema["$id"] and schema["description"], name


def test_outputs_doc_names_every_output_and_its_schema():
    text = (Path(__file__).resolve().parents[1] / "docs" / "outputs.md").read_text()
    for name in VERSIONS:
        assert schema_file(name) in text, name


def test_busy_machine_warnings_from_given_load_and_timings():
    from edgedino.bench.load import busy_warnings

    quiet = {"start": [0.2, 0.3, 0.3], "end": [2.1, 0.8, 0.4]}  # the end load is the benchmark's own 2 threads
    assert busy_warnings(quiet, 4, 2, {"vits16 onnx fp32": (10.0, 11.0)}) == []
    loaded = busy_warnings({"start": [3.5, 3, 3], "end": [5.6, 4, 3]}, 4, 2, {})
    assert len(loaded) == 1 and "machine loaded" in loaded[0] and "3.5 at start, 5.6 at end on 4 cores" in loaded[0]
    noisy = busy_warnings(quiet, 4, 2, {"vits16 onnx fp32": (10.0, 11.0), "vits16 onnx int8": (4.0, 6.0)})
    assert len(noisy) == 1 and "vits16 onnx int8 p90 / median = 1.50" in noisy[0]
    assert busy_warnings({"start": None, "end": None}, 4, 2, {}) == []  # Windows keeps no load average


def test_benchmark_prints_and_stores_the_warnings(made):
    from edgedino.bench import report, tracking_report
    from edgedino.bench.load import busy_warnings

    for module, name in ((report, "benchmark"), (tracking_report, "benchmark-tracking")):
        doc = {**made[name], "load_average": {"start": [7.0, 5, 4], "end": [8.0, 5, 4]}}
        doc["warnings"] = busy_warnings(doc["load_average"], 2, 1, {"vit_test torch fp32": (1.0, 2.0)})
        validate(name, doc)
        assert len(doc["warnings"]) == 2
        for text in (module.table(doc), module.markdown(doc)):
            assert "load average (1 min) 7.0 at start, 8.0 at end" in text
            assert all(f"warning: {w}" in text for w in doc["warnings"]), module.__name__
    assert isinstance(made["benchmark"]["warnings"], list)  # the real run stored its own (empty when quiet)


def test_progress_line_shows_each_tenth_off_a_terminal():
    import io

    from edgedino.progress import ProgressLine

    stream = io.StringIO()
    bar = ProgressLine(40, stream)
    for done in (3, 6, 32, 35, 40):  # batches need not end on a tenth; 35 is in the tenth 32 showed
        bar.update(done)
    lines = stream.getvalue().splitlines()
    assert [line.split(",")[0] for line in lines] == ["embedded 6/40 images", "embedded 32/40 images",
                                                      "embedded 40/40 images"]


def test_eval_shows_progress_while_it_embeds(made, capsys):
    artifact = made["dir"] / "x" / f"vit_test_{IMGSZ}_fp32.onnx"
    assert main(["eval", "knn", "--data", str(made["dir"] / "data"), "--weights", str(artifact), "--imgsz",
                 IMGSZ]) == 0
    err = capsys.readouterr().err
    assert "embedded 8/8 images" in err and "img/s" in err, err


def test_verify_table_has_no_export_seconds_and_export_keeps_them(made, capsys):
    from edgedino.cli.export import print_table
    from edgedino.export.results import ArtifactResult, ExportResult

    artifact = made["dir"] / "x" / f"vit_test_{IMGSZ}_fp32.onnx"
    assert main(["verify", str(artifact)]) == 0
    header = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("target"))
    assert "cls cos" in header and "export s" not in header
    fields = {k: v for k, v in made["export"].items() if k not in ("schema_version", "ok")}
    print_table(ExportResult(**{**fields, "artifacts": [ArtifactResult(**a) for a in fields["artifacts"]]}))
    header = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("target"))
    assert header.split()[-2:] == ["export", "s"]


def test_schema_enums_follow_the_tables_they_copy():
    """The targets, precisions, input formats, tasks and int8 policies a schema lists are the project's own
    (runtime/formats.py, export/spec.py, runtime/task_head.py): adding one there fails here until the schema has it."""
    from edgedino.bench.peers import PEERS
    from edgedino.bench.suite import BASELINES, RUNTIME_PRECISIONS
    from edgedino.export.spec import INPUT_FORMATS, INT8_POLICIES, PRECISIONS
    from edgedino.runtime.formats import FORMATS
    from edgedino.runtime.task_head import TASKS
    from edgedino.track.protocol import PROTOCOLS

    export, meta, bench = load_schema("export"), load_schema("artifact-metadata"), load_schema("benchmark")
    assert export["$defs"]["artifact"]["properties"]["target"]["enum"] == list(FORMATS)
    assert meta["properties"]["target"]["enum"] == list(FORMATS)
    assert bench["$defs"]["row"]["properties"]["target"]["enum"] == [*BASELINES, *FORMATS, *PEERS]
    for precision in (export["$defs"]["precision"], meta["properties"]["precision"]):
        assert precision["enum"] == list(PRECISIONS)
    assert bench["$defs"]["row"]["properties"]["precision"]["enum"] == [*PRECISIONS, *RUNTIME_PRECISIONS]
    assert export["properties"]["input_format"]["enum"] == meta["properties"]["input"]["properties"]["dtype"]["enum"] \
        == list(INPUT_FORMATS)
    assert export["properties"]["int8_policy"]["enum"] == list(INT8_POLICIES)
    tracking = load_schema("benchmark-tracking")
    assert tracking["$defs"]["method"]["properties"]["protocol"]["enum"] == list(PROTOCOLS)
    assert meta["properties"]["head"]["properties"]["task"]["enum"] == list(TASKS)
