"""The TFLite runner: one base class for every model run with ai-edge-litert.

A subclass names its expected input shape and looks up its outputs by shape (model files from
different releases order their outputs differently), then calls :meth:`TFLiteModel.run`.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from posecli import weights

__all__ = ["TFLiteModel", "quiet_stderr"]


@contextmanager
def quiet_stderr():
    """Silence file descriptor 2 (C-level writes) for the duration of the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class TFLiteModel:
    """One TFLite model file, loaded and ready to run on one input tensor.

    Raises :class:`posecli.weights.WeightsError` when the file cannot be loaded or its input is
    not ``input_shape``.
    """

    def __init__(self, path: str | Path, threads: int = 2,
                 input_shape: tuple[int, ...] | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter  # lazy: heavy import

        self.path = Path(path)
        try:
            with quiet_stderr():  # the runtime's C++ logger announces its XNNPACK delegate
                self._it = Interpreter(model_path=str(path), num_threads=threads)
                self._it.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise weights.WeightsError(f"{path}: not a usable TFLite model ({first})") from None
        inp = self._it.get_input_details()[0]
        if input_shape is not None and tuple(inp["shape"]) != tuple(input_shape):
            raise weights.WeightsError(f"{self.path.name}: unexpected input shape "
                                       f"{tuple(inp['shape'])}, expected {tuple(input_shape)}")
        self._input = inp["index"]

    def output_index(self, last_dim: int, ndim: int) -> int:
        """Index of the first output tensor with ``ndim`` dimensions and last dimension
        ``last_dim``; WeightsError when there is none."""
        for d in self._it.get_output_details():
            if len(d["shape"]) == ndim and d["shape"][-1] == last_dim:
                return d["index"]
        raise weights.WeightsError(f"{self.path.name}: no output of shape (..., {last_dim}) "
                                   f"with {ndim} dims")

    def run(self, x: np.ndarray, outputs: list[int]) -> list[np.ndarray]:
        """Run on one input tensor (its full shape, batch included) -> the requested outputs."""
        self._it.set_tensor(self._input, x)
        self._it.invoke()
        return [self._it.get_tensor(i) for i in outputs]
