"""Rendered people with known 3D truth (see tools/render_clips.py and tools/README.md)."""
