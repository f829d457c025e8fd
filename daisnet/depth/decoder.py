"""The BTS decoder: dense ASPP, local planar guidance (LPG) at 1/8, 1/4, 1/2, and the depth head.

Written from the published description (Lee et al. 2019, "From Big to Small") and the parameter
names and shapes of the official checkpoints (shared/reference/bts_official_state_dict.tsv); the
module names below are those names, so that a released checkpoint loads as it is.

Widths follow the release as functions of `num_features` (512 for the official models): with
F = num_features, the decoder runs at F (1/16), F/2 (1/8, dense ASPP of F/4 per branch), F/4 (1/4),
F/8 (1/2) and F/16 (full resolution). Smaller F gives the CPU variants (resnet18_bts).

BatchNorm: eps 1.1e-5 outside the ASPP branches (the release's TensorFlow-compatible value), torch's
default eps inside them. The release uses momentum 0.01; it is a constructor argument here because
running statistics that move 1% per step lag far behind weights trained for only a few hundred
steps (our CPU profile), which makes eval-mode output much worse than train-mode output.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

BN_EPS = 1.1e-5


def _conv_elu(in_ch: int, out_ch: int, kernel: int = 3) -> nn.Sequential:
    """Conv (no bias) + ELU; a Sequential so parameter names are `<name>.0.weight` as released."""
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2, bias=False), nn.ELU())


class UpConv(nn.Module):
    """Nearest-neighbour upsampling by `ratio`, then a 3x3 conv (no bias) and ELU."""

    def __init__(self, in_ch: int, out_ch: int, ratio: int = 2) -> None:
        super().__init__()
        self.ratio = ratio
        self.conv = nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=self.ratio, mode="nearest")
        return F.elu(self.conv(x))


class AtrousBranch(nn.Module):
    """One dense-ASPP branch: [BN] -> ReLU -> 1x1 conv to 2*out -> BN -> ReLU -> dilated 3x3 conv to out.

    The weights live in `atrous_conv` (a Sequential holding an optional `first_bn` and the
    `aconv_sequence`), which is how the released checkpoints name them.
    """

    def __init__(self, in_ch: int, out_ch: int, dilation: int, *, first_bn: bool, bn_momentum: float) -> None:
        super().__init__()
        self.atrous_conv = nn.Sequential()
        if first_bn:
            self.atrous_conv.add_module("first_bn", nn.BatchNorm2d(in_ch, eps=BN_EPS, momentum=bn_momentum))
        self.atrous_conv.add_module(
            "aconv_sequence",
            nn.Sequential(
                nn.ReLU(),
                nn.Conv2d(in_ch, out_ch * 2, 1, bias=False),
                nn.BatchNorm2d(out_ch * 2, momentum=bn_momentum),
                nn.ReLU(),
                nn.Conv2d(out_ch * 2, out_ch, 3, padding=dilation, dilation=dilation, bias=False),
            ),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.atrous_conv(x)


class Reduction(nn.Module):
    """1x1 convs halving the width down to 8 channels, then a head.

    Plane head (`is_final=False`): three channels mapped to a unit normal (polar angle theta in
    [0, pi/3], azimuth phi in [0, 2 pi]) and a distance in [0, max_depth]: output (B, 4, h, w).
    Final head (`is_final=True`): one sigmoid channel, a coarse depth / max_depth.
    """

    def __init__(self, in_ch: int, out_ch: int, max_depth: float, *, is_final: bool = False) -> None:
        super().__init__()
        self.max_depth = max_depth
        self.is_final = is_final
        self.reduc = nn.Sequential()
        width_in, width_out = in_ch, out_ch
        while width_out >= 8:
            self.reduc.add_module(f"inter_{width_in}_{width_out}", _conv_elu(width_in, width_out, kernel=1))
            width_in, width_out = width_out, width_out // 2
        if is_final:
            self.reduc.add_module("final", nn.Sequential(nn.Conv2d(width_in, 1, 1, bias=False), nn.Sigmoid()))
        else:
            self.reduc.add_module("plane_params", nn.Conv2d(width_in, 3, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.reduc(x)
        if self.is_final:
            return x
        # The release's op order (bts.py: `sigmoid * pi / 3`, `sigmoid * pi * 2`): pi / 3 rounded first
        # differs in the last bit, and official checkpoints' outputs with it.
        theta = torch.sigmoid(x[:, 0]) * math.pi / 3
        phi = torch.sigmoid(x[:, 1]) * math.pi * 2
        dist = torch.sigmoid(x[:, 2]) * self.max_depth
        n1 = torch.sin(theta) * torch.cos(phi)
        n2 = torch.sin(theta) * torch.sin(phi)
        n3 = torch.cos(theta)
        return torch.stack([n1, n2, n3, dist], dim=1)


class LocalPlanarGuidance(nn.Module):
    """Expand per-cell plane coefficients (n1, n2, n3, n4) to an `upratio` times larger depth map.

    Every coarse cell covers upratio x upratio output pixels with normalized in-cell coordinates
    (u, v) in (-1/2, 1/2), centred on the cell; the depth there is n4 / (n1 u + n2 v + n3), the
    ray-plane intersection of the local plane. No parameters.

    `min_denominator`: with the polar angle up to pi/3, n1 u + n2 v + n3 reaches zero and turns
    negative in the corners of an 8 x 8 cell (cos t = 0.619 sin t at t = 1.017 rad): a plane seen
    edge-on, or from behind. The official release divides anyway; the unbounded "depth" (seen:
    -7e5 m after 40 steps from random weights) saturates the final sigmoid to exactly 0 and the
    training loss's log to -inf. A floor (ours: 0.1, depth <= 10 x max_depth) keeps the planes
    that face the camera exact and bounds the rest; None divides as released (official weights).
    """

    def __init__(self, upratio: int, min_denominator: float | None = None) -> None:
        super().__init__()
        self.upratio = upratio
        self.min_denominator = min_denominator

    def forward(self, plane: torch.Tensor) -> torch.Tensor:
        r = self.upratio
        h, w = plane.shape[-2:]
        plane = plane.repeat_interleave(r, dim=2).repeat_interleave(r, dim=3)
        n1, n2, n3, n4 = plane.unbind(1)
        offsets = (torch.arange(r, device=plane.device, dtype=plane.dtype) - (r - 1) / 2) / r
        u = offsets.repeat(w)  # along the width: broadcasts over (B, H, W)
        v = offsets.repeat(h)[:, None]  # along the height
        denominator = n1 * u + n2 * v + n3
        if self.min_denominator is not None:
            denominator = denominator.clamp_min(self.min_denominator)
        return n4 / denominator


def _plane_eq(reduced: torch.Tensor) -> torch.Tensor:
    """Re-normalize the normal (already unit up to rounding) and keep the distance."""
    normal = F.normalize(reduced[:, :3], p=2, dim=1)
    return torch.cat([normal, reduced[:, 3:4]], dim=1)


class BtsDecoder(nn.Module):
    """Skip features (strides 2..32) -> metric depth (B, 1, H, W) in (0, max_depth].

    Forward returns the final depth before focal scaling (done by `BtsModel`).
    """

    def __init__(
        self,
        skip_channels: tuple[int, ...] | list[int],
        max_depth: float,
        num_features: int = 512,
        bn_momentum: float = 0.01,
        plane_min_denominator: float | None = None,
    ) -> None:
        super().__init__()
        if num_features % 32:
            raise ValueError("num_features must be a multiple of 32")
        c0, c1, c2, c3, c4 = skip_channels
        f = num_features
        self.max_depth = max_depth

        def bn(ch: int) -> nn.BatchNorm2d:
            return nn.BatchNorm2d(ch, eps=BN_EPS, momentum=bn_momentum)

        # 1/32 -> 1/16
        self.upconv5 = UpConv(c4, f)
        self.bn5 = bn(f)
        self.conv5 = _conv_elu(f + c3, f)
        # 1/16 -> 1/8
        self.upconv4 = UpConv(f, f // 2)
        self.bn4 = bn(f // 2)
        self.conv4 = _conv_elu(f // 2 + c2, f // 2)
        self.bn4_2 = bn(f // 2)
        # Dense ASPP at 1/8: each branch sees the concatenation of everything before it.
        q = f // 4
        dense_in = f // 2 + c2  # concat4 = [upconv4, skip2]
        self.daspp_3 = AtrousBranch(f // 2, q, 3, first_bn=False, bn_momentum=bn_momentum)
        self.daspp_6 = AtrousBranch(dense_in + q, q, 6, first_bn=True, bn_momentum=bn_momentum)
        self.daspp_12 = AtrousBranch(dense_in + 2 * q, q, 12, first_bn=True, bn_momentum=bn_momentum)
        self.daspp_18 = AtrousBranch(dense_in + 3 * q, q, 18, first_bn=True, bn_momentum=bn_momentum)
        self.daspp_24 = AtrousBranch(dense_in + 4 * q, q, 24, first_bn=True, bn_momentum=bn_momentum)
        self.daspp_conv = _conv_elu(f // 2 + 5 * q, q)
        self.reduc8x8 = Reduction(q, q, max_depth)
        self.lpg8x8 = LocalPlanarGuidance(8, plane_min_denominator)
        # 1/8 -> 1/4
        self.upconv3 = UpConv(q, q)
        self.bn3 = bn(q)
        self.conv3 = _conv_elu(q + c1 + 1, q)
        self.reduc4x4 = Reduction(q, f // 8, max_depth)
        self.lpg4x4 = LocalPlanarGuidance(4, plane_min_denominator)
        # 1/4 -> 1/2
        self.upconv2 = UpConv(q, f // 8)
        self.bn2 = bn(f // 8)
        self.conv2 = _conv_elu(f // 8 + c0 + 1, f // 8)
        self.reduc2x2 = Reduction(f // 8, f // 16, max_depth)
        self.lpg2x2 = LocalPlanarGuidance(2, plane_min_denominator)
        # 1/2 -> 1
        self.upconv1 = UpConv(f // 8, f // 16)
        self.reduc1x1 = Reduction(f // 16, f // 32, max_depth, is_final=True)
        self.conv1 = _conv_elu(f // 16 + 4, f // 16)
        self.get_depth = nn.Sequential(nn.Conv2d(f // 16, 1, 3, padding=1, bias=False), nn.Sigmoid())

        # Xavier-uniform convs, as the release initializes its decoder.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)

    def forward(self, skips: list[torch.Tensor]) -> torch.Tensor:
        skip0, skip1, skip2, skip3, skip4 = skips
        x = self.bn5(self.upconv5(F.relu(skip4)))
        iconv5 = self.conv5(torch.cat([x, skip3], dim=1))

        x = self.bn4(self.upconv4(iconv5))
        concat4 = torch.cat([x, skip2], dim=1)
        iconv4 = self.bn4_2(self.conv4(concat4))

        branches = [self.daspp_3(iconv4)]
        dense = torch.cat([concat4, branches[0]], dim=1)
        for branch in (self.daspp_6, self.daspp_12, self.daspp_18, self.daspp_24):
            out = branch(dense)
            branches.append(out)
            if branch is not self.daspp_24:
                dense = torch.cat([dense, out], dim=1)
        daspp_feat = self.daspp_conv(torch.cat([iconv4, *branches], dim=1))

        depth_8x8 = self.lpg8x8(_plane_eq(self.reduc8x8(daspp_feat))).unsqueeze(1) / self.max_depth
        x = self.bn3(self.upconv3(daspp_feat))
        iconv3 = self.conv3(torch.cat([x, skip1, F.interpolate(depth_8x8, scale_factor=0.25, mode="nearest")], dim=1))

        depth_4x4 = self.lpg4x4(_plane_eq(self.reduc4x4(iconv3))).unsqueeze(1) / self.max_depth
        x = self.bn2(self.upconv2(iconv3))
        iconv2 = self.conv2(torch.cat([x, skip0, F.interpolate(depth_4x4, scale_factor=0.5, mode="nearest")], dim=1))

        depth_2x2 = self.lpg2x2(_plane_eq(self.reduc2x2(iconv2))).unsqueeze(1) / self.max_depth
        upconv1 = self.upconv1(iconv2)
        reduc1x1 = self.reduc1x1(upconv1)
        iconv1 = self.conv1(torch.cat([upconv1, reduc1x1, depth_2x2, depth_4x4, depth_8x8], dim=1))
        return self.max_depth * self.get_depth(iconv1)
