"""Run inside Blender: import a BVH with Blender's own importer and dump every joint's world
position per frame, converted back to BVH axes, as JSON.

    blender -b --factory-startup --python tests/blender_bvh_positions.py -- in.bvh out.json

Blender 3.4 from Debian runs its importer on the system Python 3.11, where ``open(path, 'rU')``
fails; the importer's ``open`` is wrapped to drop the ``U`` (official builds do not need this).
"""
import builtins
import json
import sys

import bpy
import io_anim_bvh.import_bvh as import_bvh

_open = builtins.open


def _open_no_u(file, mode="r", *args, **kwargs):
    return _open(file, mode.replace("U", ""), *args, **kwargs)


import_bvh.open = _open_no_u

src, dst = sys.argv[sys.argv.index("--") + 1:][:2]
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.import_anim.bvh(filepath=src, global_scale=1.0, frame_start=1, use_fps_scale=False,
                        update_scene_fps=True, update_scene_duration=True, rotate_mode="NATIVE",
                        axis_forward="-Z", axis_up="Y")
obj = next(o for o in bpy.context.scene.objects if o.type == "ARMATURE")
scene = bpy.context.scene
action = obj.animation_data.action
start, end = (int(round(v)) for v in action.frame_range)
frames = []
for f in range(start, end + 1):
    scene.frame_set(f)
    pos = {}
    for pb in obj.pose.bones:
        p = obj.matrix_world @ pb.head
        pos[pb.name] = [p.x, p.z, -p.y]  # Blender (x, y, z) = BVH (x, -z, y)
    frames.append(pos)
with _open(dst, "w") as fh:
    json.dump({"fps": scene.render.fps / scene.render.fps_base, "frames": frames}, fh)
