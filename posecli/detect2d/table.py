"""Detectors by name: one table that the command line, ``posecli info``, the pipeline and
``export-onnx`` ask, so no detector-specific name lives outside ``posecli.detect2d``.

Each :class:`DetectorEntry` says how to build the detector (a multi-person tracker), its
keypoint layout, its weights, and the options it accepts (``pose_model``: a model file).
A new detector joins with one entry in :data:`DETECTORS`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

__all__ = ["DETECTORS", "DetectorEntry", "detector_entry"]


@dataclass(frozen=True)
class DetectorEntry:
    """One detector. ``build(threads, max_people, pose_model)`` -> a PoseTracker;
    ``default_model()`` the model file used when none is given (None: it takes none);
    ``export(model_file, out)`` -> (path, parity) for ``export-onnx`` (None: not exportable);
    ``model_row()`` (file name, status, checksum, folder) for ``posecli info`` when its model is
    not a shipped file; ``model_help``: what ``pose_model`` may be."""
    name: str
    layout: str
    weights: str
    build: Callable[..., object]
    default_model: Callable[[], Path] | None = None
    export: Callable[..., tuple] | None = None
    model_row: Callable[[], tuple] | None = None
    model_help: str = ""

    @property
    def takes_model(self) -> bool:
        return self.default_model is not None

    def resolve_model(self, onnx: Path | None = None, checkpoint: Path | None = None) -> Path | None:
        """The model file from ``--pose-model`` (ONNX) or ``--pose-checkpoint`` (torch),
        checked before any work; its default (perhaps downloaded) when neither is given; None
        for a detector that takes none. ValueError (one line) for a wrong combination."""
        if onnx is not None and checkpoint is not None:
            raise ValueError("give --pose-model (ONNX) or --pose-checkpoint (a .pth checkpoint), not both")
        given = onnx or checkpoint
        if not self.takes_model:
            if given is not None:
                takers = " or ".join(n for n, e in DETECTORS.items() if e.takes_model)
                raise ValueError(f"--pose-model and --pose-checkpoint are for --detector {takers}, "
                                 f"not {self.name}")
            return None
        if onnx is not None and onnx.suffix.lower() != ".onnx":
            raise ValueError(f"--pose-model {onnx}: expected an .onnx file (a .pth goes to --pose-checkpoint)")
        if checkpoint is not None and checkpoint.suffix.lower() == ".onnx":
            raise ValueError(f"--pose-checkpoint {checkpoint}: an ONNX file goes to --pose-model")
        if given is not None:
            if not given.is_file():
                raise ValueError(f"{given}: pose model file not found")
            return given.resolve()
        return self.default_model()


def _blazepose(name: str) -> DetectorEntry:
    def build(threads: int = 2, max_people: int = 5, pose_model=None, detect_every: int | None = None):
        from posecli.detect2d.solution import PoseTracker
        if pose_model is not None:
            raise ValueError(f"a pose model file is not for --detector {name}")
        return PoseTracker(name, threads=threads, max_people=max_people, detect_every=detect_every)

    variant = name.split("-")[1]
    return DetectorEntry(name, "blazepose33", f"pose_detection.tflite + pose_landmark_{variant}.tflite"
                         + (" (not shipped: download_model)" if variant == "heavy" else " (shipped)"),
                         build)


def _hrnet_build(threads: int = 2, max_people: int = 5, pose_model=None, detect_every: int | None = None):
    from posecli.detect2d.hrnet import open_hrnet
    from posecli.detect2d.solution import PoseTracker, TopDownKeypoints

    stage2 = TopDownKeypoints(open_hrnet(pose_model, threads))
    return PoseTracker("hrnet", threads=threads, max_people=max_people,
                       detect_every=detect_every, stage2=stage2)


def _hrnet_default() -> Path:
    from posecli.detect2d.hrnet import default_checkpoint
    return default_checkpoint()


def _hrnet_export(model_file: Path | None, out: Path, opset: int = 17) -> tuple:
    from posecli.detect2d.hrnet import export_onnx
    return export_onnx(model_file or _hrnet_default(), out, opset=opset)


def _hrnet_row() -> tuple:
    from posecli.detect2d.hrnet import CHECKPOINT_NAME, CHECKPOINT_SHA256_PREFIX
    from posecli.download import digest_mismatch
    from posecli.weights import sha256, user_cache

    hr = user_cache() / CHECKPOINT_NAME
    if not hr.is_file():
        return (CHECKPOINT_NAME, "[dim]not downloaded (--detector hrnet fetches it)[/]",
                CHECKPOINT_SHA256_PREFIX + "...", "")
    ok = digest_mismatch(sha256(hr), None, CHECKPOINT_SHA256_PREFIX) is None
    return (CHECKPOINT_NAME, "[green]ok[/]" if ok else "[red]checksum mismatch[/]",
            CHECKPOINT_SHA256_PREFIX + "...", str(hr.parent))


DETECTORS: dict[str, DetectorEntry] = {
    **{n: _blazepose(n) for n in ("blazepose-lite", "blazepose-full", "blazepose-heavy")},
    "hrnet": DetectorEntry("hrnet", "coco17", "MMPose HRNet-w32 COCO 256x192 (downloaded on first use)",
                           _hrnet_build, _hrnet_default, _hrnet_export, _hrnet_row,
                           "an HRNet-w32 COCO 256x192 as MMPose trains it"),
}


def detector_entry(name: str) -> DetectorEntry:
    """The table's entry for ``name``; ValueError naming the choices for an unknown one."""
    try:
        return DETECTORS[name]
    except KeyError:
        raise ValueError(f"unknown detector {name!r}; available: {', '.join(DETECTORS)}") from None
