"""pytorch-fid's FID InceptionV3, built locally with its weights read from a local file.

Nothing is downloaded: the weights file ``pt_inception-2015-12-05-6726825d.pth`` must be
placed by hand (the error message says where to get it).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "INCEPTION_FEATURE_DIM",
    "INCEPTION_WEIGHTS_FILENAME",
    "FeatureWeightsError",
    "InceptionFeatures",
    "build_fid_inception_network",
]

INCEPTION_WEIGHTS_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
INCEPTION_FEATURE_DIM = 2048


class FeatureWeightsError(ValueError):
    """A feature extractor's weights file is missing or is not a matching state dict."""


def build_fid_inception_network() -> nn.Module:
    """pytorch-fid's FID InceptionV3 architecture (torchvision Inception3 with the FID
    blocks), with freshly initialised weights; its state dict has the keys of
    ``pt_inception-2015-12-05-6726825d.pth``. Nothing is downloaded."""
    # Imported here: torchvision takes seconds to import, and only this function needs it.
    import torchvision
    from pytorch_fid.inception import (
        FIDInceptionA,
        FIDInceptionC,
        FIDInceptionE_1,
        FIDInceptionE_2,
    )

    net = torchvision.models.inception_v3(
        num_classes=1008, aux_logits=False, init_weights=False, weights=None
    )
    net.Mixed_5b = FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = FIDInceptionE_1(1280)
    net.Mixed_7c = FIDInceptionE_2(2048)
    return net


def _missing_weights_message(path: Path) -> str:
    return (
        f"Inception weights file not found: {path} (expected there). Download pytorch-fid's "
        f"{INCEPTION_WEIGHTS_FILENAME} by hand (https://github.com/mseitzer/pytorch-fid/"
        f"releases/download/fid_weights/{INCEPTION_WEIGHTS_FILENAME}) and place it at {path}; "
        "nothing is downloaded at run time"
    )


def _load_inception_weights(net: nn.Module, path: Path) -> None:
    if not path.is_file():
        raise FeatureWeightsError(_missing_weights_message(path))
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise FeatureWeightsError(
            f"Inception weights file {path} is not a readable PyTorch state dict "
            f"({type(exc).__name__}: {exc}); expected pytorch-fid's {INCEPTION_WEIGHTS_FILENAME}"
        ) from exc
    if not isinstance(state_dict, dict) or not all(
        isinstance(v, torch.Tensor) for v in state_dict.values()
    ):
        raise FeatureWeightsError(
            f"Inception weights file {path} does not hold a state dict of tensors; "
            f"expected pytorch-fid's {INCEPTION_WEIGHTS_FILENAME}"
        )
    try:
        net.load_state_dict(state_dict, strict=True, assign=True)
    except RuntimeError as exc:
        summary = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FeatureWeightsError(
            f"Inception weights file {path} does not match pytorch-fid's FID InceptionV3 "
            f"({summary}); expected pytorch-fid's {INCEPTION_WEIGHTS_FILENAME}"
        ) from exc
    unset = [k for k, v in net.state_dict().items() if v.is_meta]
    if unset:
        raise FeatureWeightsError(f"Inception weights file {path} leaves {unset[:3]} unset")


class InceptionFeatures(nn.Module):
    """pytorch-fid's ``InceptionV3(output_blocks=[3], resize_input=True,
    normalize_input=True)``: images in [0, 1] -> 2048-d pool3 features, weights loaded
    strictly from a local ``pt_inception-2015-12-05-6726825d.pth``."""

    feature_dim: int = INCEPTION_FEATURE_DIM

    def __init__(self, *, weights_path: str | Path) -> None:
        super().__init__()
        path = Path(weights_path).expanduser()
        # Built on the meta device: no time spent on an initialisation the file replaces.
        with torch.device("meta"):
            net = build_fid_inception_network()
        _load_inception_weights(net, path)
        net = net.float()
        self.weights_path = path
        part = net.get_submodule
        self.blocks = nn.Sequential(
            part("Conv2d_1a_3x3"),
            part("Conv2d_2a_3x3"),
            part("Conv2d_2b_3x3"),
            nn.MaxPool2d(kernel_size=3, stride=2),
            part("Conv2d_3b_1x1"),
            part("Conv2d_4a_3x3"),
            nn.MaxPool2d(kernel_size=3, stride=2),
            part("Mixed_5b"),
            part("Mixed_5c"),
            part("Mixed_5d"),
            part("Mixed_6a"),
            part("Mixed_6b"),
            part("Mixed_6c"),
            part("Mixed_6d"),
            part("Mixed_6e"),
            part("Mixed_7a"),
            part("Mixed_7b"),
            part("Mixed_7c"),
            nn.AdaptiveAvgPool2d(output_size=(1, 1)),
        )
        self.requires_grad_(False)
        self.eval()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images of shape (B, 3, H, W), got {tuple(images.shape)}")
        x = F.interpolate(images, size=(299, 299), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        return self.blocks(x).flatten(1)

