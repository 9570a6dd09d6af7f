"""GLB: glTF 2.0 binary, for Unity, Unreal, three.js, Blender and any glTF viewer.

Conventions (also in the README):
- the skeleton is the BVH's (:data:`posecli.export.bvh.JOINTS`): one node per BVH joint with
  its name and parent, rest translations = the BVH OFFSETs, rest rotations identity (the BVH's
  T-pose facing +Z); a skin over those nodes and a small stick-figure mesh (one thin
  octahedron per bone, bound rigidly to the bone's parent joint) so that viewers show it;
- the animation "posecli" has one key per frame at the frame's own presentation time
  (seconds, linear interpolation): every joint's local rotation (unit quaternion x, y, z, w;
  the same local rotations as the BVH, :func:`posecli.export.bvh.solve_rotations`) and the
  root's translation (the world pelvis);
- Y up, metres, +Z forward, as glTF requires; the posecli world frame (floor at Y = 0);
- frames without a person hold the nearest estimate, as in the BVH (glTF has no gaps).
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from posecli.files import atomic_path
from posecli.result import LiftResult

FLOAT, UBYTE, USHORT = 5126, 5121, 5123
ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER = 34962, 34963


def quaternions(r: np.ndarray) -> np.ndarray:
    """(N, ..., 3, 3) rotation matrices -> (N, ..., 4) unit quaternions (x, y, z, w), the sign
    chosen frame to frame so that consecutive keys lie in the same hemisphere (interpolation
    then takes the short way round)."""
    m = lambda i, j: r[..., i, j]  # noqa: E731
    trace = m(0, 0) + m(1, 1) + m(2, 2)
    # Shepperd's method: four proportional forms of q, each exact where its pivot is largest
    forms = np.stack([
        np.stack([m(2, 1) - m(1, 2), m(0, 2) - m(2, 0), m(1, 0) - m(0, 1), 1 + trace], -1),
        np.stack([1 + m(0, 0) - m(1, 1) - m(2, 2), m(0, 1) + m(1, 0), m(0, 2) + m(2, 0), m(2, 1) - m(1, 2)], -1),
        np.stack([m(0, 1) + m(1, 0), 1 - m(0, 0) + m(1, 1) - m(2, 2), m(1, 2) + m(2, 1), m(0, 2) - m(2, 0)], -1),
        np.stack([m(0, 2) + m(2, 0), m(1, 2) + m(2, 1), 1 - m(0, 0) - m(1, 1) + m(2, 2), m(1, 0) - m(0, 1)], -1),
    ])
    pivot = np.argmax(np.stack([trace, m(0, 0), m(1, 1), m(2, 2)]), axis=0)
    q = np.take_along_axis(forms, pivot[None, ..., None], axis=0)[0]
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    # hemisphere: each key's sign relative to the previous, accumulated along the frames
    step = np.where((q[1:] * q[:-1]).sum(-1) < 0, -1.0, 1.0)
    sign = np.concatenate([np.ones_like(step[:1]), np.cumprod(step, axis=0)])
    return q * sign[..., None]


def quaternion_matrix(q: np.ndarray) -> np.ndarray:
    """(..., 4) unit quaternions (x, y, z, w) -> (..., 3, 3) rotation matrices."""
    x, y, z, w = np.moveaxis(q, -1, 0)
    return np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
                     2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
                     2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
                    -1).reshape(q.shape[:-1] + (3, 3))


def bone_mesh(rest: np.ndarray, parents: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A stick figure in the rest pose: one thin octahedron per bone of non-zero length.

    Args:
        rest: (J, 3) rest positions of the joints, metres; parents: parent index per joint.
    Returns:
        positions (V, 3) float32 metres, joints (V,) index of the joint each vertex follows
        (the bone's parent joint), triangles (T, 3) vertex indices.
    """
    pos, owner, tris = [], [], []
    for i, p in enumerate(parents):
        if p < 0:
            continue
        a, b = rest[p], rest[i]
        length = np.linalg.norm(b - a)
        if length < 1e-6:
            continue
        d = (b - a) / length
        u = np.cross(d, [0.0, 0.0, 1.0] if abs(d[2]) < 0.9 else [1.0, 0.0, 0.0])
        u /= np.linalg.norm(u)
        v = np.cross(d, u)
        w = min(0.12 * length, 0.03)
        mid = a + 0.2 * length * d
        base = len(pos)
        pos += [a, b, mid + w * u, mid + w * v, mid - w * u, mid - w * v]
        owner += [p] * 6
        ring = [2, 3, 4, 5]
        for k in range(4):
            r0, r1 = base + ring[k], base + ring[(k + 1) % 4]
            tris += [(base, r1, r0), (base + 1, r0, r1)]
    return np.asarray(pos, np.float32), np.asarray(owner, np.int64), np.asarray(tris, np.uint16)


class _Buffer:
    """The binary chunk under construction: bufferViews and accessors appended to a glTF dict."""

    def __init__(self, doc: dict):
        self.doc, self.data = doc, bytearray()
        doc.setdefault("bufferViews", [])
        doc.setdefault("accessors", [])

    def add(self, array: np.ndarray, component: int, kind: str, target: int | None = None,
            bounds: bool = False) -> int:
        """Append ``array`` (rows = elements) as a bufferView + accessor; returns the accessor."""
        dtype = {FLOAT: "<f4", UBYTE: "u1", USHORT: "<u2"}[component]
        a = np.ascontiguousarray(array, dtype=dtype)
        while len(self.data) % 4:  # every view starts 4-byte aligned
            self.data.append(0)
        view = {"buffer": 0, "byteOffset": len(self.data), "byteLength": a.nbytes}
        if target is not None:
            view["target"] = target
        self.data += a.tobytes()
        self.doc["bufferViews"].append(view)
        acc = {"bufferView": len(self.doc["bufferViews"]) - 1, "componentType": component,
               "count": int(a.shape[0]), "type": kind}
        if bounds:
            flat = a.reshape(a.shape[0], -1)
            acc["min"], acc["max"] = flat.min(0).tolist(), flat.max(0).tolist()
        self.doc["accessors"].append(acc)
        return len(self.doc["accessors"]) - 1


def to_glb(root: np.ndarray, local: np.ndarray, offsets: np.ndarray, times: np.ndarray,
           generator: str = "posecli") -> bytes:
    """The GLB file.

    Args:
        root: (N, 3) root (pelvis) positions, metres; local: (N, J, 3, 3) local joint rotations
        (parent^T @ own; the root's is global); offsets: (J, 3) rest translations, metres, of the
        BVH joints; times: (N,) strictly increasing seconds.
    """
    from posecli.export.bvh import JOINTS

    parents = [j.parent for j in JOINTS]
    nj = len(JOINTS)
    rest = np.zeros((nj, 3))
    for i, p in enumerate(parents):
        rest[i] = offsets[i] + (rest[p] if p >= 0 else 0)
    doc: dict = {"asset": {"version": "2.0", "generator": generator}, "scene": 0,
                 "extras": {"units": "metres", "up": "+Y"}}
    buf = _Buffer(doc)
    nodes = []
    for i, j in enumerate(JOINTS):
        node = {"name": j.name, "translation": [float(v) for v in offsets[i]]}
        kids = [k for k, p in enumerate(parents) if p == i]
        if kids:
            node["children"] = kids
        nodes.append(node)
    positions, owner, tris = bone_mesh(rest, parents)
    joints4 = np.zeros((len(owner), 4), np.uint8)
    joints4[:, 0] = owner
    weights4 = np.zeros((len(owner), 4), np.float32)
    weights4[:, 0] = 1.0
    prim = {"attributes": {"POSITION": buf.add(positions, FLOAT, "VEC3", ARRAY_BUFFER, bounds=True),
                           "JOINTS_0": buf.add(joints4, UBYTE, "VEC4", ARRAY_BUFFER),
                           "WEIGHTS_0": buf.add(weights4, FLOAT, "VEC4", ARRAY_BUFFER)},
            "indices": buf.add(tris.reshape(-1), USHORT, "SCALAR", ELEMENT_ARRAY_BUFFER),
            "material": 0}
    doc["materials"] = [{"name": "bones", "pbrMetallicRoughness": {
        "baseColorFactor": [0.85, 0.55, 0.2, 1.0], "metallicFactor": 0.0, "roughnessFactor": 0.8}}]
    doc["meshes"] = [{"name": "Bones", "primitives": [prim]}]
    ibm = np.tile(np.eye(4, dtype=np.float32), (nj, 1, 1))
    ibm[:, :3, 3] = -rest  # rest rotations are identity: the inverse bind is a translation
    doc["skins"] = [{"name": "Armature", "joints": list(range(nj)), "skeleton": 0,
                     "inverseBindMatrices": buf.add(ibm.transpose(0, 2, 1).reshape(nj, 16), FLOAT, "MAT4")}]
    nodes.append({"name": "Bones", "mesh": 0, "skin": 0})
    doc["nodes"] = nodes
    doc["scenes"] = [{"name": "posecli", "nodes": [0, nj]}]
    t = buf.add(np.asarray(times, np.float32), FLOAT, "SCALAR", bounds=True)
    samplers = [{"input": t, "output": buf.add(np.asarray(root, np.float32), FLOAT, "VEC3"),
                 "interpolation": "LINEAR"}]
    channels = [{"sampler": 0, "target": {"node": 0, "path": "translation"}}]
    q = quaternions(local)
    for i in range(nj):
        samplers.append({"input": t, "output": buf.add(q[:, i], FLOAT, "VEC4"), "interpolation": "LINEAR"})
        channels.append({"sampler": len(samplers) - 1, "target": {"node": i, "path": "rotation"}})
    doc["animations"] = [{"name": "posecli", "samplers": samplers, "channels": channels}]
    while len(buf.data) % 4:
        buf.data.append(0)
    doc["buffers"] = [{"byteLength": len(buf.data)}]
    text = json.dumps(doc, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)  # the JSON chunk is padded with spaces
    total = 12 + 8 + len(text) + 8 + len(buf.data)
    return b"".join([struct.pack("<4sII", b"glTF", 2, total),
                     struct.pack("<I4s", len(text), b"JSON"), text,
                     struct.pack("<I4s", len(buf.data), b"BIN\0"), bytes(buf.data)])


def key_times(times: np.ndarray) -> np.ndarray:
    """(N,) frame times as float32 key times, strictly increasing (glTF requires it): a time
    that float32 rounding (or the source) makes equal to or below its predecessor is nudged
    just past it."""
    t = np.asarray(times, np.float32).copy()
    if (np.diff(t) <= 0).any():
        for i in range(1, len(t)):
            if t[i] <= t[i - 1]:
                t[i] = np.nextafter(t[i - 1], np.float32(np.inf))
    return t


def write(result: LiftResult, path: str | Path) -> None:
    """Write ``result`` as a GLB (skeleton, skin, stick-figure mesh, animation), atomically."""
    from posecli import __version__
    from posecli.export.bvh import motion, solve_rotations

    # the BVH's motion (feet, hands, head), at the clip's own frame times
    world, contact, landmarks, trust, _ = motion(result, fixed_rate=False)
    root, local, offsets = solve_rotations(world, contact, landmarks, trust)
    data = to_glb(root, local, offsets, key_times(result.frame_times()), f"posecli {__version__}")
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
