"""DAISnet on torchvision's Mask R-CNN: backbone, heads, occlusion edge, shape-prior hook."""

from daisnet.model.config import ModelConfig
from daisnet.model.daisnet import DAISNet, build_daisnet

__all__ = ["DAISNet", "ModelConfig", "build_daisnet"]
