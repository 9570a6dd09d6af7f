"""The options of a lift, in one frozen, validated type: every default is here and only here.

The command line builds a :class:`LiftOptions`, a batch carries it to its workers (it pickles),
and the pipeline reads it. Adding an option takes two edits: a field here (with its check in
``__post_init__`` and, if it shapes the outputs, its entry in :meth:`LiftOptions.record`) and
its flag in ``posecli/cli.py``.

    from posecli.options import LiftOptions
    opts = LiftOptions(person="all", flip=False)      # ValueError for an impossible value
    results = posecli.lift("clip.mp4", person="all")  # keyword options build one too

Only the standard library is imported here (the CLI imports it before anything heavy).
"""
from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from dataclasses import dataclass
from pathlib import Path

from posecli.errors import UsageError

#: detector names are checked against posecli.detect2d's table where detectors are built;
#: this is only the default.
DEFAULT_DETECTOR = "blazepose-full"
PERSON_CHOICES = ("auto", "all")
# upper bounds of numbers that would only ever be typos, and would fail late or overflow
MAX_THREADS = 256
MAX_FOCAL_PX = 1e7
MAX_BVH_SCALE = 1e6


def positive_number(option: str, value, most: float, unit: str = "") -> float:
    """``value`` as a finite number in (0, most]; UsageError naming ``option`` otherwise."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not (ok and 0 < value <= most):
        raise UsageError(f"{option} must be a positive number{unit} up to {most:g}, got {value}")
    return float(value)


def count(option: str, value, least: int = 1, most: int | None = None) -> int:
    """``value`` as an integer in [least, most]; UsageError naming ``option`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least or \
            (most is not None and value > most):
        bounds = f"at least {least}" + ("" if most is None else f" and at most {most}")
        raise UsageError(f"{option} must be {bounds}, got {value}")
    return int(value)


BVH_NAMES = ("plain", "mixamo")  # posecli.export.bvh.NAME_PREFIXES


def writer_options(bvh_scale: float = 1.0, bvh_names: str = "plain",
                   fps: float | None = None) -> dict[str, dict]:
    """Per-format keyword arguments for the writers (``posecli.export.write_all``)."""
    return {"bvh": {"scale": bvh_scale, "names": bvh_names, "fps": fps}}


def check_output(bvh_scale: float, bvh_names: str, fps: float | None) -> None:
    """UsageError for an impossible output option."""
    positive_number("--bvh-scale", bvh_scale, MAX_BVH_SCALE)
    if bvh_names not in BVH_NAMES:
        raise UsageError(f"--bvh-names {bvh_names!r}: choose {' or '.join(BVH_NAMES)}")
    if fps is not None and not (math.isfinite(fps) and 1 <= fps <= 1000):
        raise UsageError(f"--fps must be a rate in frames per second (1-1000), got {fps}")


def parse_person(value: "str | int") -> "str | int":
    """``person``: "auto", "all" or a track id (a positive integer, also as a string)."""
    if isinstance(value, bool):
        raise UsageError(f"person {value!r}: use auto, all or a track id (see `posecli tracks`)")
    if isinstance(value, int):
        if value > 0:
            return value
    else:
        v = str(value).strip().lower()
        if v in PERSON_CHOICES:
            return v
        if v.isdigit() and int(v) > 0:
            return int(v)
    raise UsageError(f"--person {value!r}: use auto, all or a track id (see `posecli tracks`)")


@dataclass(frozen=True)
class LiftOptions:
    """Everything that decides a lift's outputs, plus how to run it (threads, overwrite).

    Detection: ``detector`` (``posecli.detect2d.available_detectors()``), ``pose_model`` (the
    detector's model file where it takes one: HRNet's ONNX file or MMPose checkpoint; None: its
    default), ``person`` ("auto": the main person; "all": every person followed 0.5 s or more,
    one result each; or a track id), ``max_people`` (people followed at once).
    Lifting: ``weights`` (lifter checkpoint; None: the shipped one), ``backend`` ("onnx", the
    default: onnxruntime, and no torch import for the shipped lifter; or "torch"), ``flip`` (test-time augmentation), ``stride`` (frames between window starts, 1..T;
    None: T // 2), ``rigid`` (one length per bone), ``plausible`` (anthropometric limb ratios),
    ``root_motion`` (move the pelvis along its path), ``focal`` (px; None: the longer image
    side), ``allow_truncated`` (lift a video that ends early, with a warning), ``fusion``
    ("on": the lifter's 3D combined with BlazePose's world landmarks by the shipped learned
    fusion; "off": the pure lifter; or a fusion file; see ``posecli.lifter.fusion``), ``foot_lock``
    (pin feet in contact to the floor, :mod:`posecli.footlock`), ``camera_motion`` (measure
    the camera's pan from the background, warn, and correct the path; :mod:`posecli.camera_motion`).
    Output: ``formats`` (writer names), ``bvh_scale`` (1 metres, 100 centimetres),
    ``bvh_names`` ("plain" or "mixamo": Mixamo's ``mixamorig:`` prefix), ``fps`` (the BVH
    resampled to this rate; None: the clip's own).
    Running (never changes the outputs): ``threads`` (CPU threads of the detector, torch and
    onnxruntime), ``overwrite`` (redo clips whose outputs are complete).
    """
    # detection
    detector: str = DEFAULT_DETECTOR
    pose_model: str | None = None
    person: str | int = "auto"
    max_people: int = 5
    # lifting
    weights: str | None = None
    backend: str = "onnx"
    flip: bool = True
    stride: int | None = None
    rigid: bool = True
    plausible: bool = True
    root_motion: bool = True
    focal: float | None = None
    allow_truncated: bool = True
    fusion: str = "on"
    foot_lock: bool = True
    camera_motion: bool = True
    # output
    formats: tuple[str, ...] = ("json",)
    bvh_scale: float = 1.0
    bvh_names: str = "plain"
    fps: float | None = None
    # running
    threads: int = 2
    overwrite: bool = False

    def __post_init__(self) -> None:
        set_ = functools.partial(object.__setattr__, self)  # frozen: normalise once, here
        set_("person", parse_person(self.person))
        set_("formats", tuple(dict.fromkeys(self.formats)))
        fusion = str(self.fusion)
        set_("fusion", fusion if fusion in ("on", "off") else str(Path(fusion).resolve()))
        if self.fusion not in ("on", "off") and not Path(self.fusion).is_file():
            raise UsageError(f"--fusion must be on, off or a fusion file; {fusion!r} is none of them")
        for name in ("pose_model", "weights"):
            if getattr(self, name) is not None:
                set_(name, str(getattr(self, name)))
        count("--threads", self.threads, 1, MAX_THREADS)
        count("--max-people", self.max_people, 1)
        # stride: checked against the lifter's window (1..T) when the lifter is loaded
        if self.backend not in ("torch", "onnx"):
            raise UsageError(f"unknown lifter backend {self.backend!r} (choose torch or onnx)")
        if self.focal is not None:
            positive_number("--focal", self.focal, MAX_FOCAL_PX, " of pixels")
        check_output(self.bvh_scale, self.bvh_names, self.fps)
        if not self.formats:
            raise UsageError("--format is empty; choose at least one output format")

    def replace(self, **changes) -> "LiftOptions":
        """A copy with ``changes`` (checked again)."""
        return dataclasses.replace(self, **changes)

    @property
    def per_person(self) -> bool:
        """One result (and one output set) per tracked person: ``person="all"``."""
        return self.person == "all"

    def record(self) -> dict:
        """The output-shaping options a rerun must match to skip a clip (the resume provenance;
        not threads, not overwrite). Model files are recorded by checksum, not path."""
        from posecli import __version__
        return {"posecli_version": __version__, "formats": sorted(self.formats),
                "detector": self.detector, "weights_sha256": self.weights_sha256,
                "backend": self.backend, "flip": self.flip, "stride": self.stride,
                "rigid": self.rigid, "focal": self.focal, "root_motion": self.root_motion,
                "plausible": self.plausible, "bvh_scale": self.bvh_scale, "person": self.person,
                "max_people": self.max_people, "allow_truncated": self.allow_truncated,
                "fusion": "off" if self.fusion == "off" else self.fusion_sha256,
                "foot_lock": self.foot_lock, "camera_motion": self.camera_motion,
                "bvh_names": self.bvh_names, "fps": self.fps,
                **({"pose_model_sha256": self.pose_model_sha256} if self.pose_model else {})}

    @functools.cached_property
    def weights_sha256(self) -> str:
        """Checksum of the lifter checkpoint (the shipped one when ``weights`` is None)."""
        from posecli.weights import LIFTER, find, sha256
        return sha256(self.weights) if self.weights else sha256(find(LIFTER))

    @functools.cached_property
    def fusion_sha256(self) -> str | None:
        """Checksum of the fusion file (the shipped one for "on"; None when off)."""
        if self.fusion == "off":
            return None
        from posecli.weights import FUSION, find, sha256
        return sha256(find(FUSION) if self.fusion == "on" else self.fusion)

    @functools.cached_property
    def pose_model_sha256(self) -> str | None:
        """Checksum of the detector's model file (outputs depend on it, not on its path)."""
        if self.pose_model is None:
            return None
        from posecli.weights import sha256
        return sha256(self.pose_model)

    def writer_options(self) -> dict[str, dict]:
        """Per-format keyword arguments for the writers."""
        return writer_options(self.bvh_scale, self.bvh_names, self.fps)

    def model_key(self) -> tuple:
        """The options that decide which models are built (a cache key for reusing them)."""
        return (self.detector, self.pose_model, self.max_people, self.weights, self.backend,
                self.flip, self.stride, self.threads, self.fusion)
