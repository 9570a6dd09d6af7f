"""Posing: world rotation G_c of every Anny bone so that its rest direction lands on the mocap
direction (the rotation maps Anny's rest frame, Z up, facing -Y, onto the mocap world), and
the Human3.6M joints read off the posed rig."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from render.constants import (M_HEAD, M_LANK, M_LELB, M_LHIP, M_LKNEE, M_LSH, M_LTOE, M_LWR, M_NECK, M_PELVIS,
                              M_RANK, M_RELB, M_RHIP, M_RKNEE, M_RSH, M_RTOE, M_RWR, M_SPINE, M_THORAX,
                              NECK_FRACTION)
from render.geometry import arc_point, frame_from, normalize, slerp_rot, swing


@dataclass
class RestRig:
    labels: list[str]
    parents: list[int]
    heads: np.ndarray          # (B,3) rest bone heads
    head_top: np.ndarray       # (3,) rest scalp top
    idx: dict = field(default_factory=dict)

    def __post_init__(self):
        self.idx = {n: i for i, n in enumerate(self.labels)}

    def h(self, name: str) -> np.ndarray:
        return self.heads[self.idx[name]]

    def ball(self, side: str) -> np.ndarray:
        return np.mean([self.h(f"toe{k}-1.{side}") for k in range(1, 6)], axis=0)


def _bend_weight(a: np.ndarray, b: np.ndarray, lo_deg=8.0, hi_deg=25.0) -> np.ndarray:
    ang = np.degrees(np.arccos(np.clip((normalize(a) * normalize(b)).sum(-1), -1, 1)))
    return np.clip((ang - lo_deg) / (hi_deg - lo_deg), 0, 1)[..., None]


def bone_world_rotations(rig: RestRig, m: np.ndarray) -> np.ndarray:
    """Mocap world joints (N,19,3) -> (N,B,3,3) world rotations G_c (rest -> posed)."""
    n = len(m)
    nb = len(rig.labels)
    G = np.zeros((n, nb, 3, 3))
    done = np.zeros(nb, bool)

    def setg(name, g):
        G[:, rig.idx[name]] = g
        done[rig.idx[name]] = True

    # pelvis: hip line + torso up
    hl, hr = rig.h("upperleg01.L"), rig.h("upperleg01.R")
    thorax_r = rig.h("neck01")
    pel_r = (hl + hr) / 2
    f_rest = frame_from(hr - hl, thorax_r - pel_r)
    f_mo = frame_from(m[:, M_RHIP] - m[:, M_LHIP], m[:, M_THORAX] - m[:, M_PELVIS])
    g_pelvis = f_mo @ f_rest.T
    for b in ("root", "pelvis.L", "pelvis.R"):
        setg(b, g_pelvis)
    # chest: spine -> thorax up, shoulder line
    spine_chain = [pel_r] + [rig.h(f"spine0{k}") for k in (5, 4, 3, 2, 1)] + [thorax_r]
    spine_r = arc_point(np.array(spine_chain), 0.5)
    shl, shr = rig.h("upperarm01.L"), rig.h("upperarm01.R")
    c_rest = frame_from(thorax_r - spine_r, shr - shl)
    c_mo = frame_from(m[:, M_THORAX] - m[:, M_SPINE], m[:, M_RSH] - m[:, M_LSH])
    g_chest = c_mo @ c_rest.T
    for k, frac in zip((5, 4, 3, 2, 1), (0.2, 0.4, 0.6, 0.8, 1.0)):
        setg(f"spine0{k}", slerp_rot(g_pelvis, g_chest, frac))
    # neck and head: directions thorax -> skull base -> head top, twist from the chest
    skull_r = rig.h("head")
    g_neck = swing(np.einsum("nij,j->ni", g_chest, skull_r - thorax_r),
                   m[:, M_NECK] - m[:, M_THORAX]) @ g_chest
    for b in ("neck01", "neck02", "neck03"):
        setg(b, g_neck)
    g_head = swing(np.einsum("nij,j->ni", g_neck, rig.head_top - skull_r),
                   m[:, M_HEAD] - m[:, M_NECK]) @ g_neck
    for b in ("head", "eye.L", "eye.R"):
        setg(b, g_head)

    for side, sh, el, wr, hip, kn, an, toe in (
            ("L", M_LSH, M_LELB, M_LWR, M_LHIP, M_LKNEE, M_LANK, M_LTOE),
            ("R", M_RSH, M_RELB, M_RWR, M_RHIP, M_RKNEE, M_RANK, M_RTOE)):
        # clavicle + shoulder: thorax -> shoulder
        sh_r = rig.h(f"upperarm01.{side}")
        g_clav = swing(np.einsum("nij,j->ni", g_chest, sh_r - thorax_r),
                       m[:, sh] - m[:, M_THORAX]) @ g_chest
        setg(f"clavicle.{side}", g_clav)
        setg(f"shoulder01.{side}", g_clav)
        # arm: hinge axis from the elbow bend; straight arm: carried along by the swing
        el_r, wr_r = rig.h(f"lowerarm01.{side}"), rig.h(f"wrist.{side}")
        up_r, fo_r = el_r - sh_r, wr_r - el_r
        n_rest = np.cross(up_r, fo_r)
        up_m, fo_m = m[:, el] - m[:, sh], m[:, wr] - m[:, el]
        g_sw = swing(np.einsum("nij,j->ni", g_clav, up_r), up_m) @ g_clav
        n_fb = np.einsum("nij,j->ni", g_sw, normalize(n_rest))
        w = _bend_weight(up_m, fo_m)
        n_eff = w * normalize(np.cross(up_m, fo_m)) + (1 - w) * n_fb
        g_up = frame_from(up_m, n_eff) @ frame_from(up_r, n_rest).T
        g_fo = frame_from(fo_m, n_eff) @ frame_from(fo_r, n_rest).T
        setg(f"upperarm01.{side}", g_up)
        setg(f"upperarm02.{side}", g_up)
        setg(f"lowerarm01.{side}", g_fo)
        setg(f"lowerarm02.{side}", g_fo)
        setg(f"wrist.{side}", g_fo)
        # leg: hinge axis from the knee bend; straight leg: from the foot direction
        hip_r, kn_r, an_r, toe_r = (rig.h(f"upperleg01.{side}"), rig.h(f"lowerleg01.{side}"),
                                    rig.h(f"foot.{side}"), rig.ball(side))
        th_r, sn_r, ft_r = kn_r - hip_r, an_r - kn_r, toe_r - an_r
        nl_rest = normalize(np.cross(ft_r, sn_r))
        th_m, sn_m, ft_m = m[:, kn] - m[:, hip], m[:, an] - m[:, kn], m[:, toe] - m[:, an]
        lateral = normalize(m[:, M_LHIP] - m[:, M_RHIP])   # body-left, as +x in Anny's rest
        n_foot = np.cross(ft_m, sn_m)
        wf = np.clip(np.linalg.norm(n_foot, axis=-1, keepdims=True) /
                     np.maximum(np.linalg.norm(ft_m, axis=-1, keepdims=True) *
                                np.linalg.norm(sn_m, axis=-1, keepdims=True), 1e-9) / 0.5, 0, 1)
        n_fb = normalize(wf * normalize(n_foot) + (1 - wf) * lateral)
        w = _bend_weight(th_m, sn_m, 12.0, 30.0)
        n_bent = normalize(np.cross(th_m, sn_m))
        n_bent = np.where((n_bent * n_fb).sum(-1, keepdims=True) < -0.5, -n_bent, n_bent)
        n_eff = w * n_bent + (1 - w) * n_fb
        g_th = frame_from(th_m, n_eff) @ frame_from(th_r, nl_rest).T
        g_sn = frame_from(sn_m, n_eff) @ frame_from(sn_r, nl_rest).T
        g_ft = frame_from(ft_m, n_eff) @ frame_from(ft_r, nl_rest).T
        setg(f"upperleg01.{side}", g_th)
        setg(f"upperleg02.{side}", g_th)
        setg(f"lowerleg01.{side}", g_sn)
        setg(f"lowerleg02.{side}", g_sn)
        setg(f"foot.{side}", g_ft)
    # everything else (fingers, toes) follows its parent
    for c in range(nb):
        if not done[c]:
            G[:, c] = G[:, rig.parents[c]]
            done[c] = True
    return G


def h36m_from_rig(heads: np.ndarray, head_top: np.ndarray, rig: RestRig) -> np.ndarray:
    """Posed bone heads (N,B,3) and scalp top (N,3) -> H36M-17 joints (N,17,3)."""
    h = lambda name: heads[:, rig.idx[name]]  # noqa: E731
    out = np.zeros((len(heads), 17, 3))
    out[:, 1], out[:, 2], out[:, 3] = h("upperleg01.R"), h("lowerleg01.R"), h("foot.R")
    out[:, 4], out[:, 5], out[:, 6] = h("upperleg01.L"), h("lowerleg01.L"), h("foot.L")
    out[:, 0] = (out[:, 1] + out[:, 4]) / 2
    out[:, 8] = h("neck01")
    chain = np.stack([out[:, 0]] + [h(f"spine0{k}") for k in (5, 4, 3, 2, 1)] + [out[:, 8]], 1)
    out[:, 7] = arc_point(chain, 0.5)
    out[:, 10] = head_top
    # CMU's "Head" joint (neck_nose) sits NECK_FRACTION of the way from the thorax to the head
    # top (0.665 on the cgspeed MB skeleton; the project's virtual-head rule for retargets). The
    # anatomical skull base of Anny's rig (its ``head`` bone) is lower, ~0.39 of the way, so
    # using it would add a definition offset of ~4 cm at this joint.
    out[:, 9] = out[:, 8] + NECK_FRACTION * (head_top - out[:, 8])
    out[:, 11], out[:, 12], out[:, 13] = h("upperarm01.L"), h("lowerarm01.L"), h("wrist.L")
    out[:, 14], out[:, 15], out[:, 16] = h("upperarm01.R"), h("lowerarm01.R"), h("wrist.R")
    return out
