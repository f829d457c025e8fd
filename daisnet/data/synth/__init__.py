"""Procedural synthetic street scenes in KINS format, with exact depth and amodal/visible masks (§3.2)."""

from daisnet.data.synth.dataset import SynthConfig, generate, render_image
from daisnet.data.synth.scene import SceneConfig

__all__ = ["SceneConfig", "SynthConfig", "generate", "render_image"]
