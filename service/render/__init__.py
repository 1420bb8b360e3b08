"""Rendering for previews and overlays: numpy and OpenCV only (no torch here)."""

from service.render.mesh_renderer import Mesh, PinholeCamera, look_at, render_meshes, to_camera
from service.render.skeleton import draw_skeleton

__all__ = ["Mesh", "PinholeCamera", "draw_skeleton", "look_at", "render_meshes", "to_camera"]
