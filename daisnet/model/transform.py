"""`GeneralizedRCNNTransform` for C-channel inputs and the extra amodal targets and outputs.

torchvision resizes only `masks`, `boxes` and `keypoints` and pastes only `masks` (REFERENCE.md):
this subclass also resizes `visible_masks` and pastes every per-instance map we output.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.models.detection.roi_heads import paste_masks_in_image
from torchvision.models.detection.transform import GeneralizedRCNNTransform, resize_boxes

PASTED_KEYS = ("masks", "amodal_masks", "visible_masks", "occlusion_edges")


class AmodalTransform(GeneralizedRCNNTransform):
    def resize(self, image: torch.Tensor, target: dict[str, torch.Tensor] | None = None):
        image, target = super().resize(image, target)
        if target is not None and "visible_masks" in target:
            visible = target["visible_masks"]
            if visible.shape[-2:] != image.shape[-2:]:
                visible = F.interpolate(visible[:, None].float(), size=image.shape[-2:], mode="nearest")[:, 0]
                target["visible_masks"] = visible.byte()
        return image, target

    def postprocess(self, result, image_shapes, original_image_sizes):
        if self.training:
            return result
        for pred, im_s, o_im_s in zip(result, image_shapes, original_image_sizes):
            boxes = resize_boxes(pred["boxes"], im_s, o_im_s)
            pred["boxes"] = boxes
            for key in PASTED_KEYS:
                if key in pred:
                    pred[key] = paste_masks_in_image(pred[key], boxes, o_im_s)
        return result
