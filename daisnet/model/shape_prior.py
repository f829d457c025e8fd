"""The 3D shape prior (§3.8, §5.5): shape autoencoder, codebook retrieval and the refinement head.

VRSP-Net (Xiao et al. 2021) memorizes 2D amodal shapes; DAISnet adds the object's local depth so
the codebook remembers 3D shapes. Pieces, in the order they are used:

- `shape_input`: the autoencoder's input from a 28 x 28 amodal mask crop, the visible mask crop and
  the RoI-pooled natural-log depth. The same function serves ground-truth crops (stages
  `shape_ae`, `codebook`) and the model's coarse predictions, so both see identical inputs.
- `ShapeAutoencoder`: 28 -> 14 -> 7 with 8 channels, a 392-d code (the paper's embedding size);
  the decoder reconstructs the mask and, with depth, the depth channel too (otherwise nothing
  forces the code to keep the depth, and the codebook would not be 3D).
- `topk_codewords`: exact top-k nearest codewords (squared L2) among those of each RoI's class.
- `ShapePriorRefiner`: the `AmodalRefiner` of roi_heads.py. Encodes the coarse amodal mask with its
  pooled depth (frozen encoder), retrieves the top-k codewords of the predicted class, takes their
  decoded prototypes, fuses them with the RoI features and predicts a residual correction of the
  amodal logits. The codebook lives in buffers, so a DAISnet checkpoint carries it.

Depth normalization (decision, docs/shape_prior.md): `tanh((ln d - mean of ln d over the visible
region) / DEPTH_SCALE)`. Relative log depth makes the code distance-invariant (a car at 10 m and at
40 m has the same code); the visible region is the object's own surface; tanh bounds occluders
(strongly negative) and background/sky (strongly positive) to (-1, 1) so the reconstruction loss is
not dominated by them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

CROP = 28  # crop side (the mask head's output resolution)
CODE_CHANNELS = 8
CODE_SIDE = 7
CODE_DIM = CODE_CHANNELS * CODE_SIDE * CODE_SIDE  # 392, the paper's embedding size (Fig. 13)
DEPTH_MODES = ("all", "visible", "none")
DEPTH_SCALE = 0.2  # ln-depth units mapped to tanh's linear range: +-20% of the distance
AE_WIDTH = 16  # hidden channels of the autoencoder (the code itself is 8 x 7 x 7)


def input_channels(depth_mode: str) -> int:
    """Autoencoder input channels: the amodal mask, plus the normalized depth unless mode is `none`."""
    if depth_mode not in DEPTH_MODES:
        raise ValueError(f"shape prior depth mode {depth_mode!r}: choose from {list(DEPTH_MODES)}")
    return 1 if depth_mode == "none" else 2


def normalized_depth(log_depth: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """`tanh((ln d - visible mean of ln d) / DEPTH_SCALE)` of (R, 1, S, S) crops (module docstring)."""
    weights = visible.detach()
    total = weights.sum(dim=(1, 2, 3), keepdim=True)
    visible_mean = (log_depth * weights).sum(dim=(1, 2, 3), keepdim=True) / total.clamp_min(1e-6)
    # A crop with (almost) no visible pixel falls back to its plain mean.
    reference = torch.where(total > 1e-3, visible_mean, log_depth.mean(dim=(1, 2, 3), keepdim=True))
    return torch.tanh((log_depth - reference) / DEPTH_SCALE)


def shape_input(amodal: torch.Tensor, visible: torch.Tensor, log_depth: torch.Tensor | None,
                depth_mode: str) -> torch.Tensor:
    """The autoencoder input (R, C, 28, 28) from mask probabilities and pooled natural-log depth.

    `all`: the depth of the whole box (occluders and background included: §5.5 finds that this
    helps, the prior "implicitly memorizes occlusion scenarios"); `visible`: depth on the visible
    region only, 0 elsewhere (the paper's "SV"); `none`: the 2D VRSP-Net baseline.
    """
    input_channels(depth_mode)
    if depth_mode == "none":
        return amodal
    if log_depth is None:
        raise ValueError(f"shape prior depth mode {depth_mode!r} needs the RoI-pooled depth")
    depth = normalized_depth(log_depth, visible)
    if depth_mode == "visible":
        depth = depth * visible
    return torch.cat([amodal, depth], dim=1)


class ShapeEncoder(nn.Sequential):
    """(R, C, 28, 28) -> (R, 8, 7, 7): VRSP-Net's two stride-2 convolutions, one wider first layer."""

    def __init__(self, in_channels: int, width: int = AE_WIDTH) -> None:
        super().__init__(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU(inplace=True),  # 28 -> 14
            nn.Conv2d(width, CODE_CHANNELS, 3, stride=2, padding=1),  # 14 -> 7; linear code for k-means
        )


class ShapeDecoder(nn.Module):
    """(R, 8, 7, 7) -> mask logits (R, 1, 28, 28) and, with depth, the depth channel (R, 1, 28, 28)."""

    def __init__(self, out_channels: int, width: int = AE_WIDTH) -> None:
        super().__init__()
        self.out_channels = out_channels
        # VRSP-Net's decoder is bilinear up + conv twice; here the second up is a transposed
        # convolution: a 3x3 convolution of `width` channels at 28 x 28 costs 4x more, and the
        # autoencoder must train in a minute or two on a CPU.
        self.body = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(CODE_CHANNELS, width, 3, padding=1), nn.ReLU(inplace=True),  # 7 -> 14
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(width, width, 2, stride=2), nn.ReLU(inplace=True),  # 14 -> 28
            nn.Conv2d(width, out_channels, 3, padding=1),
        )

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        out = self.body(code)
        if self.out_channels == 1:
            return out
        # Channel 0: mask logits; channel 1: depth in (-1, 1) like the normalized input.
        return torch.cat([out[:, :1], torch.tanh(out[:, 1:])], dim=1)


class ShapeAutoencoder(nn.Module):
    """Amodal mask (+ local depth) crop -> 392-d code -> mask (+ depth): §3.8, Fig. 12."""

    def __init__(self, depth_mode: str = "all") -> None:
        super().__init__()
        self.depth_mode = depth_mode
        channels = input_channels(depth_mode)
        self.encoder = ShapeEncoder(channels)
        self.decoder = ShapeDecoder(channels)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(R, C, 28, 28) -> (R, 392) codes."""
        return self.encoder(x).flatten(1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """(R, 392) -> (R, C, 28, 28): mask logits, then the depth channel when there is one."""
        return self.decoder(codes.view(-1, CODE_CHANNELS, CODE_SIDE, CODE_SIDE))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


def reconstruction_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE of the mask logits against the binarized mask, plus MSE of the depth channel if any.

    (VRSP-Net uses MSE on a sigmoid output; BCE on logits trains the same target faster.)
    """
    loss = F.binary_cross_entropy_with_logits(output[:, 0], (target[:, 0] >= 0.5).float())
    if output.shape[1] > 1:
        loss = loss + F.mse_loss(output[:, 1:], target[:, 1:])
    return loss


def topk_codewords(codes: torch.Tensor, labels: torch.Tensor, centres: torch.Tensor,
                   centre_labels: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (R, k) into `centres` of the k nearest codewords (squared L2) of each RoI's class.

    Exact: distances are computed directly (no |a|^2 - 2ab + |b|^2 expansion, whose rounding can
    swap near neighbours), one class at a time, so memory is R_c x N_c. A class with fewer than k
    codewords repeats its farthest one; a class with none (never seen in training) searches the
    whole codebook.
    """
    out = torch.zeros(codes.shape[0], k, dtype=torch.int64, device=codes.device)
    if codes.shape[0] == 0:
        return out
    everything = torch.arange(centres.shape[0], device=codes.device)
    for label in labels.unique():
        rows = torch.nonzero(labels == label).flatten()
        members = torch.nonzero(centre_labels == label).flatten()
        if members.numel() == 0:
            members = everything
        dist = torch.cdist(codes[rows], centres[members], compute_mode="donot_use_mm_for_euclid_dist")
        count = min(k, members.numel())
        nearest = dist.topk(count, dim=1, largest=False).indices
        if count < k:
            nearest = torch.cat([nearest, nearest[:, -1:].expand(-1, k - count)], dim=1)
        out[rows] = members[nearest]
    return out


def oracle_masks(amodal: torch.Tensor, visible: torch.Tensor, context: dict[str, torch.Tensor],
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """R+S*'s shape-code input: the ground-truth amodal and visible crops (R, 1, 28, 28) of each RoI
    in place of the predicted probabilities; at test a detection without a matched instance
    (`context["matched"]` False) keeps its prediction."""
    if "amodal_target" not in context:
        raise ValueError("model.oracle shape needs the ground truth (amodal_target, visible_target) in the context")
    true_amodal, true_visible = context["amodal_target"][:, None], context["visible_target"][:, None]
    matched = context.get("matched")
    if matched is None:
        return true_amodal, true_visible
    keep = matched[:, None, None, None]
    return torch.where(keep, true_amodal, amodal), torch.where(keep, true_visible, visible)


class ShapePriorRefiner(nn.Module):
    """The shape-prior refinement of the amodal mask (an `AmodalRefiner`, roi_heads.py).

    Buffers (filled by `load_assets` before training, or by `load_state_dict` from a DAISnet
    checkpoint): `centres` (N, 392), `centre_labels` (N,), `prototypes` (N, 28, 28) = the decoded
    mask probability of each centre. The encoder is the shape autoencoder's, frozen.

    Fusion (VRSP-Net, adapted): the k retrieved prototypes are average-pooled to 14 x 14 and
    concatenated with the RoI features, convolved to `width` channels and upsampled to 28 x 28;
    there the full-resolution prototypes and the coarse logits join them and a last convolution
    predicts a residual correction of the amodal logits (zero-initialized: training starts from the
    unrefined mask, as the occlusion refinement does).
    """

    def __init__(self, depth_mode: str, codewords: int, k: int = 16, width: int = 64,
                 feature_channels: int = 256, oracle: bool = False) -> None:
        super().__init__()
        self.oracle = oracle  # R+S*: retrieve from the ground-truth masks (daisnet/model/oracle.py)
        if codewords < 1:
            raise ValueError("the shape prior needs a codebook with at least one codeword")
        self.depth_mode = depth_mode
        self.k = k
        self.encoder = ShapeEncoder(input_channels(depth_mode))
        self.encoder.requires_grad_(False)
        self.register_buffer("centres", torch.zeros(codewords, CODE_DIM))
        self.register_buffer("centre_labels", torch.zeros(codewords, dtype=torch.int64))
        self.register_buffer("prototypes", torch.zeros(codewords, CROP, CROP))
        self.fuse = nn.Sequential(
            nn.Conv2d(feature_channels + k, width, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(width, width, 2, stride=2), nn.ReLU(inplace=True),  # 14 -> 28
        )
        self.out = nn.Conv2d(width + k + 1, 1, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def train(self, mode: bool = True) -> ShapePriorRefiner:
        super().train(mode)
        self.encoder.eval()  # frozen: no training-mode behaviour either
        return self

    @torch.no_grad()
    def load_assets(self, encoder_state: dict[str, torch.Tensor], centres: torch.Tensor,
                    centre_labels: torch.Tensor, prototypes: torch.Tensor) -> None:
        """Fill the frozen encoder and the codebook buffers (the shapes must match the config)."""
        self.encoder.load_state_dict(encoder_state)
        for name, value in (("centres", centres), ("centre_labels", centre_labels), ("prototypes", prototypes)):
            buffer = getattr(self, name)
            if tuple(value.shape) != tuple(buffer.shape):
                raise ValueError(f"codebook {name} has shape {tuple(value.shape)}, the model expects "
                                 f"{tuple(buffer.shape)}")
            buffer.copy_(value.to(buffer.dtype))

    def retrieve(self, amodal_logit: torch.Tensor, labels: torch.Tensor,
                 context: dict[str, torch.Tensor]) -> torch.Tensor:
        """Decoded prototypes (R, k, 28, 28) of the top-k codewords for each RoI's coarse mask (the
        oracle: its ground-truth masks where it has them, `oracle_masks`)."""
        with torch.no_grad():
            amodal, visible = torch.sigmoid(amodal_logit), torch.sigmoid(context["visible_logit"])
            if self.oracle:
                amodal, visible = oracle_masks(amodal, visible, context)
            x = shape_input(amodal, visible, context.get("roi_log_depth"), self.depth_mode)
            codes = self.encoder(x).flatten(1)
            index = topk_codewords(codes, labels, self.centres, self.centre_labels, self.k)
        return self.prototypes[index]

    def forward(self, mask_features: torch.Tensor, amodal_logit: torch.Tensor, labels: torch.Tensor,
                context: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        priors = self.retrieve(amodal_logit, labels, context)
        pooled = F.avg_pool2d(priors, 2) if priors.shape[-1] != mask_features.shape[-1] else priors
        fused = self.fuse(torch.cat([mask_features, pooled], dim=1))
        refined = amodal_logit + self.out(torch.cat([fused, priors, amodal_logit], dim=1))
        losses: dict[str, torch.Tensor] = {}
        if self.training and "amodal_target" in context:
            target = context["amodal_target"]
            losses["loss_shape"] = (F.binary_cross_entropy_with_logits(refined[:, 0], target)
                                    if target.numel() else refined.sum() * 0)
        return refined, losses
