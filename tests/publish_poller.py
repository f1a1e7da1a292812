"""A reader that polls one published artifact while it is exported again and again (tests/test_publish.py).

    python publish_poller.py KIND ARTIFACT STOP_FILE EXPECTED_JSON

EXPECTED_JSON maps each weights SHA-256 the metadata may name to the hex of the bytes its patch-embedding weight
must then hold. Each read takes the metadata and that weight from one snapshot of the artifact and counts it as
consistent, mixed (metadata of one export, weights of another) or missing (nothing readable there). KIND:

- slow-ir: the .xml read whole, a pause, then the .bin (OpenVINO's reader opens the .xml, then the .bin; the pause
  widens the moment between, as a busy machine would);
- openvino: ov.Core().read_model(xml), the plain OpenVINO reader, then the constant's data;
- mlpackage: the package's spec and weight blob, through edgedino's reader of one snapshot of the folder.
Prints {"consistent": n, "mixed": n, "missing": n, "other": [first errors]} when STOP_FILE appears.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

WEIGHT = "patch_embed.proj.weight"


def slow_ir(xml: Path) -> tuple[str, bytes]:
    text = xml.read_text()
    time.sleep(0.02)
    data = xml.with_suffix(".bin").read_bytes()
    sha = re.search(r"weights_sha256&quot;: &quot;([0-9a-f]{64})", text)[1]
    layer = re.search(rf'name="[^"]*{re.escape(WEIGHT)}" type="Const"[^>]*>\s*<data [^>]*offset="(\d+)" '
                      r'size="(\d+)"', text)
    offset, size = int(layer[1]), int(layer[2])
    if offset + size > len(data):
        raise EOFError("the .bin is shorter than the .xml says")
    return sha, data[offset:offset + size]


def openvino(xml: Path) -> tuple[str, bytes]:
    import openvino as ov

    model = ov.Core().read_model(str(xml))
    sha = json.loads(model.get_rt_info(["edgedino"]).astype(str))["weights_sha256"]
    const = next(op for op in model.get_ops() if op.get_type_name() == "Constant" and WEIGHT in op.get_friendly_name())
    return sha, const.get_data().tobytes()


def mlpackage(path: Path) -> tuple[str, bytes]:
    import numpy as np

    from edgedino.export.coreml.constants import main_ops
    from edgedino.export.coreml.interpreter.package import Blobs, constant, read_spec
    from edgedino.runtime.coreml import model_files, read_snapshot

    def read(package: Path) -> tuple[str, bytes]:
        spec = read_spec(package)
        sha = json.loads(spec.description.metadata.userDefined["edgedino"])["weights_sha256"]
        op = next(op for op in main_ops(spec)
                  if op.type == "const" and WEIGHT.replace(".", "_") in op.outputs[0].name)
        return sha, np.ascontiguousarray(constant(op.attributes["val"], Blobs(model_files(package)[1]))).tobytes()

    return read_snapshot(path, read)  # one snapshot of the folder, as edgedino's package readers take it


def main() -> None:
    kind, artifact, stop, expected = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
    expected = {sha: bytes.fromhex(h) for sha, h in json.loads(Path(expected).read_text()).items()}
    read = {"slow-ir": slow_ir, "openvino": openvino, "mlpackage": mlpackage}[kind]
    counts = {"consistent": 0, "mixed": 0, "missing": 0, "other": []}
    while not stop.exists():
        try:
            sha, weight = read(artifact)
        except (FileNotFoundError, EOFError) as e:
            counts["missing"] += 1
            counts["other"] = counts["other"][:3] + [f"{type(e).__name__}: {e}"[:200]]
            continue
        except Exception as e:  # anything else a reader can meet is also a failure of the publishing
            counts["other"] = counts["other"][:3] + [f"{type(e).__name__}: {e}"[:200]]
            continue
        counts["consistent" if expected.get(sha) == weight else "mixed"] += 1
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
