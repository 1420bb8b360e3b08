"""Rendering for previews and overlays: numpy and OpenCV only (no torch here)."""

from service.render.mesh_renderer import Mesh, PinholeCamera, look_at, render_meshes, to_camera

__all__ = ["Mesh", "PinholeCamera", "look_at", "render_meshes", "to_camera"]
