"""Looks: body shape and colours."""
from __future__ import annotations


import numpy as np



SKIN = [(0.95, 0.80, 0.68), (0.87, 0.68, 0.53), (0.72, 0.52, 0.38), (0.55, 0.38, 0.26),
        (0.38, 0.26, 0.18)]
HAIR = [(0.08, 0.06, 0.05), (0.25, 0.15, 0.08), (0.45, 0.30, 0.15), (0.75, 0.62, 0.38),
        (0.55, 0.55, 0.55)]
CLOTH = [(0.80, 0.10, 0.10), (0.10, 0.25, 0.70), (0.10, 0.55, 0.25), (0.95, 0.80, 0.20),
         (0.95, 0.95, 0.95), (0.15, 0.15, 0.18), (0.55, 0.20, 0.60), (0.95, 0.50, 0.10),
         (0.20, 0.65, 0.75), (0.45, 0.30, 0.20)]
FLOOR = [(0.55, 0.52, 0.48), (0.45, 0.50, 0.45), (0.60, 0.55, 0.45), (0.40, 0.42, 0.48)]
WALL = [(0.78, 0.82, 0.86), (0.85, 0.82, 0.75), (0.70, 0.75, 0.70), (0.88, 0.88, 0.88)]


def sample_looks(rng: np.random.Generator) -> dict:
    """Body-shape phenotype (Anny's [0,1] parameters) and colours for one clip."""
    # Anny's age: 0 baby, 1/3 child, 2/3 young adult, 1 old; its height parameter scales the
    # body strongly (and depends on age), so a standing height is drawn and solved for instead
    pheno = {"gender": float(rng.uniform(0, 1)), "age": float(rng.uniform(0.62, 0.95)),
             "muscle": float(rng.uniform(0.25, 0.8)), "weight": float(rng.uniform(0.2, 0.8)),
             "height": 0.5, "proportions": float(rng.uniform(0.3, 0.8))}
    shirt, trousers = rng.choice(len(CLOTH), 2, replace=False)
    return {"phenotype": pheno, "stature_m": float(rng.uniform(1.55, 1.92)),
            "skin": SKIN[rng.integers(len(SKIN))], "hair": HAIR[rng.integers(len(HAIR))],
            "shirt": CLOTH[shirt], "trousers": CLOTH[trousers],
            "shoes": CLOTH[rng.choice([5, 4, 1])],
            "long_sleeves": bool(rng.uniform() < 0.5), "shorts": bool(rng.uniform() < 0.25),
            "floor": FLOOR[rng.integers(len(FLOOR))], "wall": WALL[rng.integers(len(WALL))],
            "key_azimuth_deg": float(rng.uniform(-70, 70))}
