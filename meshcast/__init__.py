"""meshcast: video-based 3D human pose and shape estimation."""
