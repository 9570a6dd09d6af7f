from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data() -> Path:
    from posecli.files import shared_data_dir
    return shared_data_dir()


@pytest.fixture
def shared():
    """The shared data folder; the test is skipped when it is absent."""
    d = shared_data()
    if not d.is_dir():
        pytest.skip(f"shared data not found at {d} (set POSECLI_SHARED_DATA)")
    return d


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """An untrained tiny lifter checkpoint, for tests of plumbing rather than accuracy."""
    import torch
    from posecli.lifter import LifterConfig, MixSTE, save_checkpoint
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "tiny.pt"
    save_checkpoint(MixSTE(LifterConfig(frames=27, width=32, depth=2, heads=4)), path, {"data": "untrained"})
    return path


def write_video(path: Path, frames: list[np.ndarray], fps: float = 25.0) -> Path:
    import imageio_ffmpeg
    h, w = frames[0].shape[:2]
    gen = imageio_ffmpeg.write_frames(str(path), (w, h), fps=fps, macro_block_size=1, quality=8)
    gen.send(None)
    for f in frames:
        gen.send(np.ascontiguousarray(f))
    gen.close()
    return path
