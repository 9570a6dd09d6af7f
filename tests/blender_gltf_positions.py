"""Run inside Blender: import a GLB with Blender's own glTF importer and dump every bone head's
world position at each animation key, converted back to glTF axes, as JSON.

    blender -b --factory-startup --python tests/blender_gltf_positions.py -- in.glb out.json

The keys are read from the imported action (one per frame of the clip) and evaluated at their
own, possibly fractional, scene frame, so the check does not depend on the scene's frame rate.

Blender 3.4 from Debian runs its glTF importer on the system numpy (apt python3-numpy, 1.24),
which no longer has the ``np.bool`` alias the importer uses; it is put back (official builds
bundle an older numpy and do not need this).
"""
import json
import math
import sys

import bpy
import numpy

if "bool" not in vars(numpy):
    numpy.bool = bool

src, dst = sys.argv[sys.argv.index("--") + 1:][:2]
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.import_scene.gltf(filepath=src)
obj = next(o for o in bpy.context.scene.objects if o.type == "ARMATURE")
scene = bpy.context.scene
action = obj.animation_data.action
keys = sorted({round(k.co.x, 4) for fc in action.fcurves for k in fc.keyframe_points})
frames = []
for key in keys:
    scene.frame_set(int(math.floor(key)), subframe=key - math.floor(key))
    pos = {}
    for pb in obj.pose.bones:
        p = obj.matrix_world @ pb.head
        pos[pb.name] = [p.x, p.z, -p.y]  # Blender (x, y, z) = glTF (x, -z, y)
    frames.append(pos)
with open(dst, "w") as fh:
    json.dump({"fps": scene.render.fps / scene.render.fps_base, "keys": keys, "frames": frames}, fh)
