"""posecli: an ordinary video of a person in, 3D human motion out.

    import posecli
    result = posecli.lift("clip.mp4")          # a LiftResult: 2D keypoints, flags, 3D joints
    print(result.pose3d.shape)                  # (frames, 17, 3) metres, camera axes

See :func:`posecli.pipeline.lift` for the options and :class:`posecli.result.LiftResult` for
the arrays, their units and axes.
"""
from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["LiftResult", "__version__", "lift"]


def __getattr__(name: str):
    # Lazy, so that ``posecli --help`` and error paths do not pay for importing torch.
    if name == "lift":
        from posecli.pipeline import lift
        return lift
    if name == "LiftResult":
        from posecli.result import LiftResult
        return LiftResult
    raise AttributeError(f"module 'posecli' has no attribute {name!r}")
