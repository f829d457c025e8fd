"""BTS inference on uint8 images: pad to multiples of 32, predict, crop back to the full frame.

BTS's encoder halves the resolution five times, so H and W must be multiples of 32. The release
evaluates KITTI on a 352 x 1216 crop and zero-fills the rest; we need depth for every pixel of every
image (the features and the model read the whole frame), so the image is padded instead, by
reflection (a zero band would look like a black wall to the network and bias the border), and the
prediction is cropped back. Each image is padded from its own true size (`sizes`), so the canvas
padding of the prepared store never reaches the network as image content; depth outside an
image's true size is 0 (no image there).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from daisnet.depth.bts import BtsModel, normalize_images


def _ceil32(n: int) -> int:
    return -(-n // 32) * 32


def _pad_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Pad (1, C, h, w) at the bottom and right to (height, width): reflect when possible."""
    h, w = x.shape[-2:]
    pad = (0, width - w, 0, height - h)
    if pad[1] == 0 and pad[3] == 0:
        return x
    if pad[1] < w and pad[3] < h:
        return F.pad(x, pad, mode="reflect")
    return F.pad(x, pad, mode="replicate")  # reflection needs pad < size: tiny images only


@torch.no_grad()
def predict_depth(
    model: BtsModel,
    images: np.ndarray | torch.Tensor,
    focal: np.ndarray | torch.Tensor | float,
    sizes: np.ndarray | None = None,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """Depth in metres, float32 (B, H, W), for uint8 RGB images (B, H, W, 3).

    `focal`: px per image (B,) or one number. `sizes`: true (h, w) per image when the images sit on
    a larger canvas (top-left aligned); None means every image fills the canvas. The caller bounds
    memory by the batch it passes. The model is used in eval mode.
    """
    images_t = torch.as_tensor(images)
    if images_t.dtype != torch.uint8 or images_t.ndim != 4 or images_t.shape[-1] != 3:
        raise ValueError(f"expected uint8 images (B, H, W, 3), got {images_t.dtype} {tuple(images_t.shape)}")
    b, canvas_h, canvas_w, _ = images_t.shape
    if sizes is None:
        sizes = np.tile([canvas_h, canvas_w], (b, 1))
    sizes = np.asarray(sizes, dtype=np.int64).reshape(b, 2)
    if (sizes <= 0).any() or (sizes[:, 0] > canvas_h).any() or (sizes[:, 1] > canvas_w).any():
        raise ValueError(f"image sizes {sizes.tolist()} do not fit the canvas {canvas_h} x {canvas_w}")
    focal_t = torch.as_tensor(focal, dtype=torch.float32).reshape(-1).expand(b).contiguous()
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.eval()

    pad_h, pad_w = _ceil32(int(sizes[:, 0].max())), _ceil32(int(sizes[:, 1].max()))
    x = normalize_images(images_t)  # (B, 3, H, W) float
    batch = torch.cat([_pad_to(x[i : i + 1, :, : sizes[i, 0], : sizes[i, 1]], pad_h, pad_w) for i in range(b)])
    depth = model(batch.to(device), focal_t.to(device))[:, 0].float().cpu().numpy()

    out = np.zeros((b, canvas_h, canvas_w), dtype=np.float32)
    for i, (h, w) in enumerate(sizes):
        out[i, :h, :w] = depth[i, :h, :w]
    return out
