"""Batched inference of a trained DAISnet over a split, one output per image, memory bounded by a batch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader

from daisnet.data.torch_dataset import AmodalDataset, collate
from daisnet.model.precision import autocast
from daisnet.progress import track

GROUND_TRUTH_KEYS = ("boxes", "labels", "masks", "visible_masks")  # what the RoI heads match detections with


@torch.no_grad()
def predict_split(model: torch.nn.Module, dataset: AmodalDataset, batch_size: int = 2,
                  device: torch.device | str = "cpu", num_workers: int = 0, amp: str = "off") -> Iterator[dict[str, Any]]:
    """Yield each image's output (tensors on the CPU, masks at the image's true size) with `image_id`;
    the network runs under `amp`'s autocast (off | bf16 | fp16), its outputs are float32. A model that
    reads the ground truth at test (an edge head: its edge metric; `model.oracle`) is given the
    split's annotations with the images; no other model sees them."""
    device = torch.device(device)
    model.eval().to(device)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate, num_workers=num_workers)
    with_truth = getattr(model, "reads_roi_ground_truth", False)
    for images, targets in track(loader, "evaluate: inference", unit="batch"):
        truth = [{k: v.to(device) for k, v in t.items() if k in GROUND_TRUTH_KEYS} for t in targets] if with_truth else None
        with autocast(device, amp):
            outputs = model([image.to(device) for image in images], truth)
        for output, target in zip(outputs, targets):
            output = {k: v.cpu() for k, v in output.items()}
            output["image_id"] = target["image_id"]
            yield output
