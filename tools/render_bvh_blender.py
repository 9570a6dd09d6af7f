"""Render frames of a BVH with Blender's own importer (workbench engine) to PNG, to look at.

    blender -b --factory-startup --python tools/render_bvh_blender.py -- in.bvh out_prefix \
        [--frames 1,30,60] [--view front|side|both] [--rest]

Every bone becomes a tapered stick (parented to its bone, so it moves with the imported
animation), on a checkered floor at height 0; the camera follows the hips. ``--rest`` renders the
rest pose (Blender's Rest Position) instead of the animation. Writes
``<out_prefix>_<view>_<frame>.png``. Blender 3.4 from Debian needs the ``open(..., 'rU')`` fix
the tests use (tests/blender_bvh_positions.py).
"""
import builtins
import math
import sys

import bpy
import io_anim_bvh.import_bvh as import_bvh

_open = builtins.open
import_bvh.open = lambda f, mode="r", *a, **k: _open(f, mode.replace("U", ""), *a, **k)

argv = sys.argv[sys.argv.index("--") + 1:]
src, prefix = argv[:2]
frames = [1]
view = "both"
rest = "--rest" in argv
if "--frames" in argv:
    frames = [int(v) for v in argv[argv.index("--frames") + 1].split(",")]
if "--view" in argv:
    view = argv[argv.index("--view") + 1]

bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.import_anim.bvh(filepath=src, global_scale=1.0, frame_start=1, use_fps_scale=False,
                        update_scene_fps=True, update_scene_duration=True, rotate_mode="NATIVE",
                        axis_forward="-Z", axis_up="Y")
arm = next(o for o in bpy.context.scene.objects if o.type == "ARMATURE")
if rest:
    arm.data.pose_position = "REST"


def stick(length: float, radius: float):
    """A four-sided tapered stick along +Y from 0 to ``length`` (bone space)."""
    r0, r1 = radius, radius * 0.5
    verts = [(0, 0, 0)]
    verts += [(r0 * math.cos(a), 0.15 * length, r0 * math.sin(a)) for a in (0, 1.57, 3.14, 4.71)]
    verts += [(0, length, 0)]
    faces = [(0, 1, 2), (0, 2, 3), (0, 3, 4), (0, 4, 1), (5, 2, 1), (5, 3, 2), (5, 4, 3), (5, 1, 4)]
    me = bpy.data.meshes.new("stick")
    me.from_pydata(verts, [], faces)
    return me


colours = {"Left": (0.25, 0.55, 1.0, 1), "Right": (1.0, 0.55, 0.12, 1)}
for bone in arm.data.bones:
    me = stick(bone.length, max(0.012, 0.12 * bone.length))
    ob = bpy.data.objects.new("stick_" + bone.name, me)
    bpy.context.scene.collection.objects.link(ob)
    ob.parent, ob.parent_type, ob.parent_bone = arm, "BONE", bone.name
    ob.location = (0, -bone.length, 0)  # bone parenting starts at the tail
    side = next((k for k in colours if k in bone.name.split(":")[-1]), None)
    ob.color = colours.get(side, (0.9, 0.9, 0.9, 1))

bpy.ops.mesh.primitive_plane_add(size=8, location=(0, 0, 0))
floor = bpy.context.active_object
floor.color = (0.35, 0.37, 0.4, 1)
scene = bpy.context.scene
scene.render.engine = "BLENDER_WORKBENCH"
scene.display.shading.color_type = "OBJECT"
scene.display.shading.light = "STUDIO"
scene.display.shading.show_shadows = True
scene.display.shading.show_cavity = False
scene.render.resolution_x, scene.render.resolution_y = 640, 640
scene.render.image_settings.file_format = "PNG"

hips = next(b.name for b in arm.pose.bones if b.name.endswith("Hips"))
cam_data = bpy.data.cameras.new("cam")
cam_data.lens = 55
cam = bpy.data.objects.new("cam", cam_data)
scene.collection.objects.link(cam)
scene.camera = cam
# Blender axes: BVH (x, y, z) = Blender (x, -z, y); the BVH rest pose faces +Z = Blender -Y
views = {"front": (0.0, -3.4, 1.2), "side": (3.4, 0.0, 1.2), "back": (0.0, 3.4, 1.2)}
chosen = ["front", "side"] if view == "both" else [view]
for f in frames:
    scene.frame_set(f)
    centre = arm.matrix_world @ arm.pose.bones[hips].head
    for name in chosen:
        off = views[name]
        cam.location = (centre.x + off[0], centre.y + off[1], off[2])
        direction = centre - cam.location
        direction.z = 0.9 - cam.location.z
        cam.rotation_euler = direction.to_track_quat("-Z", "Y").to_euler()
        scene.render.filepath = f"{prefix}_{name}_{f:04d}.png"
        bpy.ops.render.render(write_still=True)
