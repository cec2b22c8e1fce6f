"""The pictures a trial uploads, drawn with Pillow: a grid of sample images and a small plot
of the four schedules against the step."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from nat_core.strategy import GenerationStrategy

__all__ = ["GRID_PAD", "grid_shape", "sample_grid_image", "schedule_plot_image"]

GRID_PAD = 2
_GRID_BACKGROUND = (128, 128, 128)
_MAX_COLUMNS = 8
_MIN_CELL = 64  # tiny images (8x8 digits) are enlarged, pixel for pixel, to at least this
_MAX_CELL = 128  # large ones (256x256) are reduced to at most this

_SCHEDULES = (
    ("mask ratio", "mask_ratios", (31, 119, 180)),
    ("re-mask temp", "remask_temps", (255, 127, 14)),
    ("sample temp", "sample_temps", (44, 160, 44)),
    ("cfg", "cfg_scales", (214, 39, 40)),
)


def grid_shape(count: int) -> tuple[int, int]:
    """(rows, columns) of a grid of ``count`` images: at most 8 columns, rows balanced."""
    rows = math.ceil(count / _MAX_COLUMNS)
    return rows, math.ceil(count / rows)


def _cell_size(side: int) -> int:
    if side < _MIN_CELL:
        return side * math.ceil(_MIN_CELL / side)
    return min(side, _MAX_CELL)


def sample_grid_image(images: Tensor) -> Image.Image:
    """Images (B, 3, H, W) in [0, 1] as one RGB grid with a grey border of ``GRID_PAD``."""
    if images.ndim != 4 or images.shape[1] != 3 or images.shape[0] < 1:
        raise ValueError(f"images must be (B, 3, H, W) with B >= 1, got {tuple(images.shape)}")
    pixels = (images.detach().float().clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)
    count, _, height, width = pixels.shape
    cell_h, cell_w = _cell_size(height), _cell_size(width)
    rows, columns = grid_shape(count)
    grid = Image.new(
        "RGB",
        (columns * (cell_w + GRID_PAD) + GRID_PAD, rows * (cell_h + GRID_PAD) + GRID_PAD),
        _GRID_BACKGROUND,
    )
    small = cell_h > height
    for index in range(count):
        cell = Image.fromarray(pixels[index].transpose(1, 2, 0), "RGB")
        resample = Image.Resampling.NEAREST if small else Image.Resampling.BOX
        cell = cell.resize((cell_w, cell_h), resample)
        row, column = divmod(index, columns)
        grid.paste(
            cell, (GRID_PAD + column * (cell_w + GRID_PAD), GRID_PAD + row * (cell_h + GRID_PAD))
        )
    return grid


def schedule_plot_image(
    strategy: GenerationStrategy, *, size: tuple[int, int] = (480, 300)
) -> Image.Image:
    """The four schedules against the step, one small panel each, on a white background."""
    width, height = size
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    steps = len(strategy.sample_temps)
    panel_w, panel_h = width // 2, height // 2
    for index, (title, field, color) in enumerate(_SCHEDULES):
        values = list(getattr(strategy, field))
        left, top = (index % 2) * panel_w, (index // 2) * panel_h
        box = (left + 40, top + 18, left + panel_w - 12, top + panel_h - 22)
        low, high = min(0.0, *values), max(values)
        high = high if high > low else low + 1.0
        draw.rectangle(box, outline=(160, 160, 160))
        draw.text((left + 40, top + 3), title, fill=color, font=font)
        draw.text((left + 4, box[1] - 4), f"{high:.2g}", fill="black", font=font)
        draw.text((left + 4, box[3] - 8), f"{low:.2g}", fill="black", font=font)
        draw.text((box[0], box[3] + 4), "1", fill="black", font=font)
        draw.text((box[2] - 12, box[3] + 4), f"{steps}", fill="black", font=font)
        draw.text(((box[0] + box[2]) // 2 - 12, box[3] + 4), "step", fill="black", font=font)
        points = [
            (
                box[0] + (box[2] - box[0]) * (t / max(1, steps - 1)),
                box[3] - (box[3] - box[1]) * ((v - low) / (high - low)),
            )
            for t, v in enumerate(values)
        ]
        if len(points) > 1:
            draw.line(points, fill=color, width=2)
        for x, y in points:
            draw.ellipse((x - 2.5, y - 2.5, x + 2.5, y + 2.5), fill=color)
    return image
