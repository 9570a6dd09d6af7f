"""The parts that need anny / torch / pyrender: the body, its paint, posing and rendering."""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from render.constants import FPS, HEIGHT, M_LANK, M_LHIP, M_LKNEE, M_PELVIS, SUPERSAMPLE, WIDTH
from render.geometry import normalize
from render.camera import CameraSpec, place_camera, project, sample_camera, to_camera
from render.mocap import MocapClip
from render.rig import RestRig, bone_world_rotations, h36m_from_rig
from render.looks import sample_looks


_MODEL = {}


def _anny_model():
    if "m" not in _MODEL:
        os.environ.setdefault("ANNY_CACHE_DIR", "/work/cache/anny")
        import anny
        import torch
        torch.set_num_threads(2)
        m = anny.Anny(pose_parameterization="world-orient")
        _MODEL["m"] = m
        _MODEL["coco"] = anny.KeypointsRegressor.coco(m)
    return _MODEL["m"], _MODEL["coco"]


@dataclass
class Body:
    rig: RestRig
    rest_vertices: np.ndarray     # (V,3)
    rest_poses: np.ndarray        # (B,4,4)
    faces: np.ndarray             # (F,3)
    colours: np.ndarray           # (V,3) in [0,1]
    top_vertex: int
    phenotype: dict
    height_m: float


def load_body(looks: dict) -> Body:
    """Shape the Anny body and paint it (clothes by skinning region, face, hair)."""
    import torch
    m, coco = _anny_model()
    with torch.no_grad():
        if "stature_m" in looks:   # solve the height parameter for the wanted standing height
            pheno = dict(looks["phenotype"])
            hs = []
            for h in (0.3, 0.7):
                v = m(phenotype_kwargs={**pheno, "height": h})["rest_vertices"][0, :, 2]
                hs.append(float(v.max() - v.min()))
            h = 0.3 + 0.4 * (looks["stature_m"] - hs[0]) / (hs[1] - hs[0])
            looks["phenotype"] = {**pheno, "height": float(np.clip(h, 0.0, 1.0))}
        out = m(phenotype_kwargs=looks["phenotype"])
        rest_v = out["rest_vertices"][0].numpy()
        heads = out["rest_bone_heads"][0].numpy()
        poses = out["rest_bone_poses"][0].numpy()
        kp = coco({"vertices": out["rest_vertices"]})[0].numpy()
        faces = m.faces.numpy().astype(np.int64)
    top = int(np.argmax(rest_v[:, 2]))
    rig = RestRig(list(m.bone_labels), [int(p) for p in m.bone_parents], heads, rest_v[top])
    colours = paint(m, rig, rest_v, kp, looks)
    height = float(rest_v[:, 2].max() - rest_v[:, 2].min())
    return Body(rig, rest_v, poses, faces, colours, top, looks["phenotype"], height)


def paint(m, rig: RestRig, v: np.ndarray, kp: np.ndarray, looks: dict) -> np.ndarray:
    """Per-vertex colours in Anny's rest frame (Z up, facing -Y, body-left at +X)."""
    if looks.get("mannequin"):                      # ablation: a grey, featureless body
        return np.full((len(v), 3), 0.62)
    bi = m.vertex_bone_indices.numpy()
    bw = m.vertex_bone_weights.numpy()
    dom = np.array(rig.labels, dtype=object)[bi[np.arange(len(bi)), np.argmax(bw, 1)]]
    col = np.tile(np.asarray(looks["skin"], float), (len(v), 1))
    has = lambda *keys: np.array([any(k in d for k in keys) for d in dom])  # noqa: E731
    z = v[:, 2]
    pelvis_z = (rig.h("upperleg01.L")[2] + rig.h("upperleg01.R")[2]) / 2
    belt_z = pelvis_z + 0.10 * (rig.h("neck01")[2] - pelvis_z) / 0.5
    torso = has("root", "pelvis", "spine", "clavicle", "shoulder01", "upperarm", "breast")
    shirt = (torso & (z > belt_z)) | has("upperarm", "clavicle", "shoulder01")
    if looks["long_sleeves"]:
        shirt |= has("lowerarm")
    trousers = (torso & (z <= belt_z)) | has("upperleg")
    if not looks["shorts"]:
        trousers |= has("lowerleg")
    shoes = has("foot", "toe")
    col[shirt] = looks["shirt"]
    col[trousers] = looks["trousers"]
    col[shoes] = looks["shoes"]
    if not looks.get("face", True):                 # ablation: plain head, no hair or features
        return col
    # face: COCO keypoints in rest pose: 0 nose, 1 l_eye, 2 r_eye, 3 l_ear, 4 r_ear
    nose, eyes, ears = kp[0], kp[[1, 2]], kp[[3, 4]]
    head = has("head") & ~has("eye")
    eye_z = eyes[:, 2].mean()
    hair_col = np.asarray(looks["hair"], float)
    # hair: scalp above the hairline and the back of the head
    hair = head & ((z > eye_z + 0.045) |
                   ((v[:, 1] > ears[:, 1].mean() - 0.005) & (z > ears[:, 2].mean() - 0.035)))
    col[hair] = hair_col
    # brows: strips above the eyes on the front of the face
    for e in eyes:
        dx = v[:, 0] - e[0]
        brow = head & (np.abs(dx) < 0.024) & (z > e[2] + 0.012 + 0.004 * (dx / 0.024) ** 2) & \
            (z < e[2] + 0.022 + 0.004 * (dx / 0.024) ** 2) & (v[:, 1] < e[1] + 0.02)
        col[brow] = hair_col * 0.8
    # lips: below the nose, where the mouth cavity opens
    mouth_z = nose[2] - 0.038
    lx = v[:, 0] / 0.026
    lips = head & (np.abs(lx) < 1) & (np.abs(z - mouth_z) < 0.009 * np.sqrt(np.clip(1 - lx ** 2, 0, 1)) + 1e-4) \
        & (v[:, 1] < nose[1] + 0.04)
    col[lips] = np.asarray(looks["skin"]) * np.array([0.75, 0.42, 0.42]) + np.array([0.12, 0, 0])
    # eyes: white eyeball, dark iris and pupil around the front-most point
    for side in ("L", "R"):
        ev = has(f"eye.{side}")
        if not ev.any():
            continue
        col[ev] = (0.93, 0.93, 0.9)
        front = v[ev][np.argmin(v[ev][:, 1])]
        r = np.linalg.norm(v - front, axis=1)
        col[ev & (r < 0.0065)] = (0.25, 0.16, 0.10)
        col[ev & (r < 0.003)] = (0.02, 0.02, 0.02)
    return col


def pose_body(body: Body, mocap: MocapClip, batch: int = 32):
    """Posed vertices (N,V,3), H36M joints (N,17,3), COCO keypoints (N,17,3) and the rig's skull
    base (N,3), world frame:
    the floor at y = 0, the trajectory scaled to the body's leg length."""
    import torch
    m, coco = _anny_model()
    world = mocap.world
    G = bone_world_rotations(body.rig, world)
    R = body.rest_poses[:, :3, :3]
    D = np.einsum("nbij,bjk->nbik", G, R)
    verts, heads, kps = [], [], []
    with torch.no_grad():
        for a in range(0, len(world), batch):
            d = np.zeros((len(D[a:a + batch]), len(R), 4, 4))
            d[:, :, :3, :3] = D[a:a + batch]
            d[:, :, 3, 3] = 1
            d[:, 0, :3, 3] = np.einsum("nij,j->ni", G[a:a + batch, 0], body.rig.heads[0])
            out = m(pose_parameters=torch.as_tensor(d, dtype=m.dtype),
                    phenotype_kwargs=body.phenotype)
            verts.append(out["vertices"].numpy())
            heads.append(out["bone_poses"][:, :, :3, 3].numpy())
            kps.append(coco(out)[:, :17].numpy())
    verts, heads, kps = np.concatenate(verts), np.concatenate(heads), np.concatenate(kps)
    joints = h36m_from_rig(heads, verts[:, body.top_vertex], body.rig)
    skull = heads[:, body.rig.idx["head"]]
    # place: pelvis follows the mocap root, scaled by leg length; feet on the floor
    leg_m = np.median(np.linalg.norm(world[:, M_LKNEE] - world[:, M_LHIP], axis=-1) +
                      np.linalg.norm(world[:, M_LANK] - world[:, M_LKNEE], axis=-1))
    leg_b = np.linalg.norm(body.rig.h("lowerleg01.L") - body.rig.h("upperleg01.L")) + \
        np.linalg.norm(body.rig.h("foot.L") - body.rig.h("lowerleg01.L"))
    scale = leg_b / leg_m
    target = world[:, M_PELVIS] * scale
    shift = target - joints[:, 0]
    floor = np.percentile((verts + shift[:, None])[:, :, 1].min(1), 5)
    shift[:, 1] -= floor
    return (verts + shift[:, None], joints + shift[:, None], kps + shift[:, None],
            skull + shift)


def _floor_mesh(colour, size=16.0, tiles=32):
    import trimesh
    xs = np.linspace(-size / 2, size / 2, tiles + 1)
    verts, faces, cols = [], [], []
    for i in range(tiles):
        for j in range(tiles):
            k = len(verts)
            verts += [[xs[i], 0, xs[j]], [xs[i + 1], 0, xs[j]], [xs[i + 1], 0, xs[j + 1]],
                      [xs[i], 0, xs[j + 1]]]
            faces += [[k, k + 2, k + 1], [k, k + 3, k + 2]]
            c = np.asarray(colour) * (0.92 if (i + j) % 2 else 1.04)
            cols += [c] * 4
    tm = trimesh.Trimesh(np.array(verts), np.array(faces),
                         vertex_colors=np.clip(np.array(cols) * 255, 0, 255).astype(np.uint8),
                         process=False)
    return tm


class Renderer:
    def __init__(self, looks: dict, k: np.ndarray, eye: np.ndarray, centre: np.ndarray):
        os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
        if not hasattr(np, "infty"):
            np.infty = np.inf
        import pyrender
        self.pr = pyrender
        s = SUPERSAMPLE
        flat = bool(looks.get("flat_light"))          # ablation: ambient light only
        self.scene = pyrender.Scene(bg_color=list(looks["wall"]) + [1.0],
                                    ambient_light=[0.85, 0.85, 0.85] if flat else [0.28, 0.28, 0.3])
        self.scene.add(pyrender.Mesh.from_trimesh(_floor_mesh(looks["floor"]), smooth=False))
        cam = pyrender.IntrinsicsCamera(k[0, 0] * s, k[1, 1] * s, k[0, 2] * s, k[1, 2] * s,
                                        znear=0.05, zfar=60.0)
        self.cam_node = self.scene.add(cam, pose=np.eye(4))
        # key light with shadows, from above and beside the camera; a weaker fill light (a point
        # light on the other side of the camera: no shadow pass) and ambient light
        view = normalize(centre - eye)
        az = np.deg2rad(looks["key_azimuth_deg"])
        d = np.array([np.cos(az) * view[0] - np.sin(az) * view[2], 0,
                      np.sin(az) * view[0] + np.cos(az) * view[2]])
        d = normalize(d * np.cos(np.deg2rad(50)) + np.array([0, -np.sin(np.deg2rad(50)), 0]))
        z = -d                                     # pyrender lights shine along their -z axis
        x = normalize(np.cross(np.array([0, 1.0, 0]), z))
        pose = np.eye(4)
        pose[:3, :3] = np.stack([x, z * 0 + np.cross(z, x), z], 1)
        if not flat:
            self.scene.add(pyrender.DirectionalLight(color=[1.0, 0.97, 0.92], intensity=3.2), pose=pose)
        side = normalize(np.cross(view, np.array([0, 1.0, 0]))) * (-np.sign(az) if az else 1.0)
        fill_at = eye + side * 2.0 + np.array([0, 1.0, 0])
        dist = np.linalg.norm(centre - fill_at)
        pose = np.eye(4)
        pose[:3, 3] = fill_at
        if not flat:
            self.scene.add(pyrender.PointLight(color=[0.9, 0.95, 1.0], intensity=1.4 * dist ** 2 * np.pi),
                           pose=pose)
        self.body_node = None
        self.r = pyrender.OffscreenRenderer(WIDTH * s, HEIGHT * s)
        self.flags = pyrender.RenderFlags.NONE if flat else pyrender.RenderFlags.SHADOWS_DIRECTIONAL

    def render(self, verts, faces, colours_u8, r_wc, t_wc) -> np.ndarray:
        import trimesh
        pr = self.pr
        tm = trimesh.Trimesh(verts, faces, vertex_colors=colours_u8, process=False)
        mesh = pr.Mesh.from_trimesh(tm, smooth=True)
        if self.body_node is not None:
            self.scene.remove_node(self.body_node)
        self.body_node = self.scene.add(mesh)
        # camera-to-world in OpenGL axes (x right, y up, looking along -z)
        pose = np.eye(4)
        rc = r_wc.T
        pose[:3, :3] = rc @ np.diag([1.0, -1.0, -1.0])
        pose[:3, 3] = -rc @ t_wc
        self.scene.set_pose(self.cam_node, pose)
        color, _ = self.r.render(self.scene, flags=self.flags)
        s = SUPERSAMPLE
        img = color.reshape(HEIGHT, s, WIDTH, s, 3).astype(np.float32).mean(axis=(1, 3))
        return np.clip(img + 0.5, 0, 255).astype(np.uint8)

    def close(self):
        self.r.delete()


def render_clip(out_dir: Path, name: str, mocap: MocapClip, seed: int, crf: int = 23,
                camera: CameraSpec | None = None, looks: dict | None = None,
                max_frames: int | None = None, variant: str = "full",
                person_frac: float | None = None, camera_height: float | None = None) -> Path:
    """Pose, film and write ``out_dir/name.mp4`` and ``out_dir/name.truth.npz``.

    variant: "full" (default) or an ablation of the looks: "plain_head" (no hair, eyes, brows,
    lips), "mannequin" (uniform grey body), "flat" (ambient light only, no shadows).
    camera_height: metres above the floor for the sampled camera (default: drawn, 0.7-1.8 m).
    """
    import imageio_ffmpeg
    rng = np.random.default_rng(seed)
    looks = looks or sample_looks(rng)
    looks = {**looks, "face": variant != "plain_head", "mannequin": variant == "mannequin",
             "flat_light": variant == "flat"}
    t0 = time.time()
    body = load_body(looks)
    verts, joints, kps, skull = pose_body(body, mocap)
    if max_frames:
        verts, joints, kps, skull = (verts[:max_frames], joints[:max_frames], kps[:max_frames],
                                     skull[:max_frames])
    t_pose = time.time() - t0
    spec = camera or sample_camera(rng, body.height_m, person_frac, camera_height)
    facing0 = np.cross(np.array([0, 1.0, 0]), joints[0, 1] - joints[0, 4])  # up x (r - l) = fwd
    k, r_wc, t_wc, eye = place_camera(spec, joints[:, 0], facing0, body.height_m)
    j_cam = to_camera(joints, r_wc, t_wc)
    c_cam = to_camera(kps, r_wc, t_wc)
    j2d, c2d = project(j_cam, k), project(c_cam, k)
    out_dir.mkdir(parents=True, exist_ok=True)
    video = out_dir / f"{name}.mp4"
    rend = Renderer(looks, k, eye, joints[:, 0].mean(0))
    cols = np.clip(body.colours * 255, 0, 255).astype(np.uint8)
    w = imageio_ffmpeg.write_frames(str(video), (WIDTH, HEIGHT), fps=FPS, codec="libx264",
                                    pix_fmt_out="yuv420p", macro_block_size=16,
                                    output_params=["-crf", str(crf), "-preset", "slow",
                                                   "-movflags", "+faststart"])
    w.send(None)
    t1 = time.time()
    for i in range(len(verts)):
        w.send(np.ascontiguousarray(rend.render(verts[i], body.faces, cols, r_wc[i], t_wc[i])))
    w.close()
    rend.close()
    t_render = (time.time() - t1) / max(len(verts), 1)
    np.savez_compressed(
        out_dir / f"{name}.truth.npz",
        joints3d_cam=j_cam, joints2d=j2d, coco2d=c2d, coco3d_cam=c_cam, K=k,
        skull_base_cam=to_camera(skull[:, None], r_wc, t_wc)[:, 0],
        fps=np.float64(FPS), width=np.int64(WIDTH), height=np.int64(HEIGHT),
        cam_R=r_wc, cam_t=t_wc, cam_eye=eye,
        phenotype_names=np.array(list(body.phenotype)),
        phenotype_values=np.array(list(body.phenotype.values())),
        body_height_m=np.float64(body.height_m),
        clip=np.array(mocap.name), subject=np.array(mocap.subject), source=np.array(mocap.source),
        mocap_frames=np.array([mocap.first, mocap.first + len(verts)]), seed=np.int64(seed),
        camera=np.array(json.dumps(spec.__dict__)),
        looks=np.array(json.dumps({k_: v for k_, v in looks.items() if k_ != "phenotype"})),
        variant=np.array(variant),
    )
    print(f"{name}: {len(verts)} frames, pose {t_pose:.1f} s, render {t_render * 1000:.0f} ms/frame, "
          f"body {body.height_m:.2f} m, focal {spec.focal:.0f}, person "
          f"{np.ptp(j2d[..., 1], axis=1).mean():.0f} px (head top..ankle), {video.stat().st_size / 1e6:.2f} MB",
          flush=True)
    return video


# Clips of the benchmark: held-out subjects only (07 walks, 13 everyday/jumps, 85 acrobatics).
# Not 07_12 from cmu_przestr: that copy is corrupt (joint speeds ~3x the other sources' copy,
# accelerations ~5x: jitter), so the clean cmu_iclone_cc copy is used.
