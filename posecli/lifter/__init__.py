"""The 2D -> 3D lifter: the MixSTE model, checkpoint reading, window blending, and one runtime.

- :mod:`posecli.lifter.model`: MixSTE (read it top to bottom), its configuration, checkpoints.
- :mod:`posecli.lifter.windows`: overlapping windows blended at the seams.
- :mod:`posecli.lifter.runtime`: :class:`Lifter`, a window function (torch or onnxruntime)
  with flip test-time augmentation and the stride, applied once for every caller.
- :mod:`posecli.lifter.onnx`: ONNX export and the onnxruntime window function.

The lifter knows only arrays: nothing here reads video, runs detectors or imports training;
torch is imported only with the model (the shipped lifter also runs on onnxruntime alone).
"""
from posecli.lifter.runtime import DEFAULT_WEIGHTS, Lifter, from_model, load_lifter, torch_forward

#: names of the torch model module, imported on first use: lifting with onnxruntime
#: (``posecli lift``'s default) never imports torch
_MODEL = ("COMPACT_CONFIG", "PAPER_CONFIG", "LifterConfig", "MixSTE", "count_parameters",
          "load_model", "save_checkpoint")


def __getattr__(name: str):
    if name in _MODEL:
        from posecli.lifter import model
        return getattr(model, name)
    raise AttributeError(f"module 'posecli.lifter' has no attribute {name!r}")

__all__ = ["COMPACT_CONFIG", "DEFAULT_WEIGHTS", "PAPER_CONFIG", "Lifter", "LifterConfig", "MixSTE", "count_parameters",
           "from_model", "load_lifter", "load_model", "save_checkpoint", "torch_forward"]
