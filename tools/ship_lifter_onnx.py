#!/usr/bin/env python3
"""Export the shipped lifter checkpoint (weights/lifter.pt) to weights/lifter.onnx and record it
in weights/manifest.json, so that ``posecli lift`` (onnxruntime, the default backend) runs the
shipped lifter without importing torch.

    python tools/ship_lifter_onnx.py          # after every change of weights/lifter.pt

The export records the checkpoint's sha256 (``checkpoint_sha256``), its configuration and its
training-data note as ONNX metadata; the runtime uses the export only while that sha256 is the
manifest's entry for lifter.pt (else it loads the checkpoint with torch), and
tests/lifter/test_shipped_onnx.py checks the two agree.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    from posecli import weights
    from posecli.lifter.model import load_model
    from posecli.lifter.onnx import OnnxSession, export_model, parity

    src = REPO / "weights" / weights.LIFTER
    out = REPO / "weights" / "lifter.onnx"
    model, meta = load_model(src)
    export_model(model, out, meta={"checkpoint_sha256": meta["sha256"], "data": meta.get("data", "")})
    err = parity(model, OnnxSession(out))
    manifest_path = REPO / "weights" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["lifter.onnx"] = {
        "sha256": weights.sha256(out), "bytes": out.stat().st_size, "kind": "lifter-onnx",
        "exported_from": weights.LIFTER, "checkpoint_sha256": meta["sha256"],
        "source": "tools/ship_lifter_onnx.py: torch.onnx.export (opset 17) of lifter.pt; "
                  f"max |torch - onnxruntime| {err * 1000:.1e} mm on random inputs",
        "licence": manifest["files"][weights.LIFTER].get("licence", "")}
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {out} ({out.stat().st_size} bytes) and its manifest entry; "
          f"max |torch - onnxruntime| = {err * 1000:.2e} mm")


if __name__ == "__main__":
    main()
