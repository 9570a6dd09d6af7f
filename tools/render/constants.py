"""Frame size, rate, mocap joint indices and held-out subjects shared by the render modules."""
from __future__ import annotations

import os
from pathlib import Path

# the shared data folder sits beside the checkout (as in tests/conftest.py)
MOCAP = Path(os.environ.get("POSECLI_MOCAP", Path(__file__).resolve().parents[3] / "shared" / "data"
                            / "mocap" / "cmu_h36m.npz"))
# the second CMU file (Daz-rig takes not in cmu_h36m.npz: subjects 09, 10, 13, 14), beside the first
MOCAP_MORE = MOCAP.with_name("cmu_more.npz")
WIDTH, HEIGHT, FPS = 640, 480, 30.0
SUPERSAMPLE = 2

# Mocap joint indices (cmu_h36m.npz: H36M order + toes).
M_PELVIS, M_RHIP, M_RKNEE, M_RANK, M_LHIP, M_LKNEE, M_LANK = 0, 1, 2, 3, 4, 5, 6
M_SPINE, M_THORAX, M_NECK, M_HEAD = 7, 8, 9, 10
M_LSH, M_LELB, M_LWR, M_RSH, M_RELB, M_RWR, M_RTOE, M_LTOE = 11, 12, 13, 14, 15, 16, 17, 18

# Held-out CMU subjects (the lifter trains on the others).
HELD_OUT = ("07", "13", "85")
NECK_FRACTION = 0.665   # = posecli.skeleton.NECK_FRACTION (not imported: runs in the render venv)

