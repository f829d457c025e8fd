"""BTS inference on uint8 images: pad to multiples of 32, predict, crop back to the full frame.

BTS's encoder halves the resolution five times, so H and W must be multiples of 32. The release
evaluates KITTI on a 352 x 1216 crop and zero-fills the rest; we need depth for every pixel of every
image (the features and the model read the whole frame), so the image is padded instead, by
reflection (a zero band would look like a black wall to the network and bias the border), and the
prediction is cropped back. Each image is padded from its own true size (`sizes`), so the canvas
padding of the prepared store never reaches the network as image content; depth outside an
image's true size is 0 (no image there).

`input_scale` < 1 (CPU profiles) resizes each image before the network and the depth back to the
true size after it (bilinear, or guided by the image when the model's `upsample` is "guided"); the focal length given to the network is scaled with the image, as in
training (`daisnet.depth.train`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from daisnet.depth.bts import BtsModel, normalize_images
from daisnet.depth.upsample import guided_upsample


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
    input_scale: float | None = None,
) -> np.ndarray:
    """Depth in metres, float32 (B, H, W), for uint8 RGB images (B, H, W, 3).

    `focal`: px per image (B,) or one number. `sizes`: true (h, w) per image when the images sit on
    a larger canvas (top-left aligned); None means every image fills the canvas. `input_scale`:
    None uses the model's own (`BtsConfig.input_scale`, stored in our checkpoints). The caller bounds
    memory by the batch it passes. The model is used in eval mode.
    """
    if isinstance(images, np.ndarray) and not images.flags.writeable:
        images = images.copy()  # a read-only array (a decoded PNG, a Zarr block) would make torch warn
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

    if input_scale is None:
        input_scale = model.config.input_scale
    if not 0 < input_scale <= 1:
        raise ValueError(f"input_scale must be in (0, 1], got {input_scale}")
    # network-side size of each image
    net_sizes = np.maximum(1, np.round(sizes * input_scale)).astype(np.int64) if input_scale != 1 else sizes
    pad_h, pad_w = _ceil32(int(net_sizes[:, 0].max())), _ceil32(int(net_sizes[:, 1].max()))
    # Contiguous NCHW as the release feeds it: a channels-last view picks other conv kernels (up to 2 mm apart).
    x = images_t.permute(0, 3, 1, 2).contiguous().float() / 255.0
    padded = []
    for i in range(b):
        img = x[i : i + 1, :, : sizes[i, 0], : sizes[i, 1]]
        if input_scale != 1:
            img = F.interpolate(img, size=tuple(net_sizes[i]), mode="bilinear", align_corners=False, antialias=True)
        padded.append(_pad_to(normalize_images(img), pad_h, pad_w))
    focal_t = focal_t * torch.from_numpy(net_sizes[:, 1] / sizes[:, 1]).float()
    depth = model(torch.cat(padded).to(device), focal_t.to(device)).float().cpu()

    out = np.zeros((b, canvas_h, canvas_w), dtype=np.float32)
    for i, ((h, w), (nh, nw)) in enumerate(zip(sizes, net_sizes)):
        d = depth[i : i + 1, :, :nh, :nw]
        if input_scale != 1 and model.config.upsample == "guided":
            d = guided_upsample(d, x[i : i + 1, :, :h, :w])
        elif input_scale != 1:
            d = F.interpolate(d, size=(int(h), int(w)), mode="bilinear", align_corners=False)
        out[i, :h, :w] = d[0, 0].numpy()
    return out


def bts_predictor(model: BtsModel, *, batch_size: int = 4, default_focal: float = 721.5377,
                  device: torch.device | str = "cpu"):  # noqa: ANN201 (a PredictFn, daisnet.depth.store)
    """A `PredictFn` for `daisnet.depth.store.write_depth_store`: (images, sizes, focal) -> depth.

    Runs `batch_size` images at a time, whatever block the writer hands over (memory bounded by the
    batch); a NaN focal (real KINS: unknown per image) becomes `default_focal`.
    """
    device = torch.device(device)
    model = model.to(device).eval()

    def predict(images: np.ndarray, sizes: np.ndarray, focal: np.ndarray) -> np.ndarray:
        focal = np.where(np.isfinite(focal), focal, np.float32(default_focal)).astype(np.float32)
        out = [predict_depth(model, np.asarray(images[i : i + batch_size]), focal[i : i + batch_size],
                             sizes=sizes[i : i + batch_size], device=device)
               for i in range(0, len(images), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, *images.shape[1:3]), np.float32)

    return predict
