"""The accuracy benchmarks' own measures (benchmarks/e2e_accuracy.py): knee flexion and the
side-by-side table with MediaPipe's per-clip rows."""
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import e2e_accuracy as e2e  # noqa: E402


def _legs(flex_deg: float) -> np.ndarray:
    """(1, 17, 3) with both legs bent by flex_deg (thigh straight down, shin swung forward)."""
    x = np.zeros((1, 17, 3))
    f = np.radians(flex_deg)
    for hip, knee, ankle, side in ((1, 2, 3, -0.1), (4, 5, 6, 0.1)):
        x[0, hip] = [side, 0.0, 0.0]
        x[0, knee] = [side, 0.45, 0.0]                                  # y down: knee below hip
        x[0, ankle] = x[0, knee] + 0.4 * np.array([0.0, np.cos(f), -np.sin(f)])
    return x


def test_knee_flexion_is_zero_for_a_straight_leg_and_grows_with_the_bend():
    for deg in (0.0, 30.0, 90.0, 120.0):
        assert np.allclose(e2e.knee_flexion_deg(_legs(deg)), deg, atol=1e-6)
    # scale and rotation do not matter
    r = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    assert np.allclose(e2e.knee_flexion_deg(3.0 * _legs(40.0) @ r.T), 40.0, atol=1e-6)
    assert e2e.median_knee(np.concatenate([_legs(10), _legs(20), _legs(50)])) == 20.0


def test_mediapipe_table_reads_per_clip_json_and_reports_ratios(tmp_path):
    ours = [{"clip": "a", "subject": "02", "p1_14": 90.0, "p2_14": 60.0, "mpjve_14": 10.0},
            {"clip": "b", "subject": "05", "p1_14": 120.0, "p2_14": 80.0, "mpjve_14": 20.0}]
    (tmp_path / "a.json").write_text(json.dumps({"clip": "a", "mediapipe_found": 1.0, "p1_14": 100.0,
                                                 "p2_14": 75.0, "mpjve_14": 20.0, "err2d_limbs_px": 5.0,
                                                 "knee_med": 20.0, "knee_med_gt": 25.0}))
    text = e2e.mediapipe_table(ours, tmp_path)          # clip b has no MediaPipe row: NaN, not a crash
    assert "0.90" in text and "0.50" in text            # a: P1 90/100, MPJVE 10/20
    assert "ratio of the means over 1 clips: p1_14 0.90" in text
