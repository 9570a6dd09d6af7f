"""posecli: turn an ordinary video of a person into 3D human motion."""
__version__ = "0.1.0"
