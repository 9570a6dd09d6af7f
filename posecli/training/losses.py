"""Training losses of MixSTE (Zhang et al., CVPR 2022), written from the paper's description.

total = weighted MPJPE + 0.5 * temporal consistency + 2.0 * MPJVE

All functions take (B, T, J, 3) tensors in metres and return a scalar tensor.
"""
from __future__ import annotations

import torch

# Per-joint weights by name: 1 pelvis, hips, spine, thorax, neck; 2.5 knees and ankles;
# 1.5 head and shoulders; 4 elbows and wrists.
_WEIGHT_BY_NAME = {
    "pelvis": 1.0, "r_hip": 1.0, "l_hip": 1.0, "spine": 1.0, "thorax": 1.0, "neck_nose": 1.0,
    "r_knee": 2.5, "l_knee": 2.5, "r_ankle": 2.5, "l_ankle": 2.5,
    "head": 1.5, "l_shoulder": 1.5, "r_shoulder": 1.5,
    "l_elbow": 4.0, "r_elbow": 4.0, "l_wrist": 4.0, "r_wrist": 4.0,
}


def joint_weights(names: tuple[str, ...] | list[str]) -> torch.Tensor:
    """(J,) loss weights for a layout given by joint names (unknown names weigh 1)."""
    return torch.tensor([_WEIGHT_BY_NAME.get(n, 1.0) for n in names], dtype=torch.float32)


def weighted_mpjpe(pred: torch.Tensor, gt: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """mean_{b,t,j} w_j * ||pred - gt||. (B,T,J,3), (B,T,J,3), (J,) -> ()."""
    return (torch.linalg.vector_norm(pred - gt, dim=-1) * w).mean()


def mpjpe(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Unweighted mean per-joint position error. (..., J, 3) -> ()."""
    return torch.linalg.vector_norm(pred - gt, dim=-1).mean()


def temporal_consistency(pred: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Joint-weighted squared frame-to-frame differences of the prediction.

    mean_{b,t,j} w_j * ||pred[t+1] - pred[t]||^2. (B,T,J,3), (J,) -> (); 0 when T == 1.
    """
    if pred.shape[1] < 2:
        return pred.new_zeros(())
    d = pred[:, 1:] - pred[:, :-1]
    return ((d ** 2).sum(-1) * w).mean()


def mpjve(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Mean per-joint velocity error: MPJPE of first differences over time. (B,T,J,3) -> ()."""
    if pred.shape[1] < 2:
        return pred.new_zeros(())
    return mpjpe(pred[:, 1:] - pred[:, :-1], gt[:, 1:] - gt[:, :-1])


def mixste_loss(pred: torch.Tensor, gt: torch.Tensor, w: torch.Tensor, tc: float = 0.5,
                vel: float = 2.0) -> tuple[torch.Tensor, dict[str, float]]:
    """The paper's total loss and its parts (floats, for logging)."""
    a = weighted_mpjpe(pred, gt, w)
    b = temporal_consistency(pred, w)
    c = mpjve(pred, gt)
    total = a + tc * b + vel * c
    return total, {"wmpjpe": a.item(), "tc": b.item(), "mpjve": c.item()}
