"""A procedural image world: one object per image, described by four attributes.

Each image shows one shape on a grey background. Its attributes are the
shape, the colour, the size and the fill pattern, and its report lists them
as `key: value` lines, the attribute-report form the engine shuffles line by
line. Some colour and pattern values are *seen* (the instruction-following
base is trained on them) and the others are *new* (they appear only in the
domain data and the quiz), so a quiz about new values measures what tuning
added.

Every draw comes from a `random.Random` seeded by the caller, so the same
seed gives the same pixels and reports.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw


IMAGE_SIZE = 32
# Shapes are drawn at this multiple of the final size, then downscaled, so
# edges and thin pattern lines are anti-aliased rather than jagged.
_SUPERSAMPLING = 4

SHAPES = ("circle", "square", "triangle", "diamond")
SIZES = ("small", "large")
SEEN_COLOURS = ("red", "green", "blue", "yellow")
NEW_COLOURS = ("purple", "orange", "cyan", "pink")
SEEN_PATTERNS = ("solid", "striped")
NEW_PATTERNS = ("dotted", "checkered")
COLOURS = SEEN_COLOURS + NEW_COLOURS
PATTERNS = SEEN_PATTERNS + NEW_PATTERNS

RGB = {
    "red": (215, 40, 40),
    "green": (40, 170, 60),
    "blue": (45, 75, 220),
    "yellow": (235, 215, 40),
    "purple": (140, 50, 190),
    "orange": (245, 140, 20),
    "cyan": (40, 205, 215),
    "pink": (250, 140, 190),
}
BACKGROUND = (128, 128, 128)

# Report keys in their canonical order; every report lists all four.
ATTRIBUTE_KEYS = ("shape", "colour", "size", "pattern")
VALUES = {"shape": SHAPES, "colour": COLOURS, "size": SIZES, "pattern": PATTERNS}


@dataclass(frozen=True)
class WorldObject:
    """The attributes of one image; `draw_image` renders them."""

    shape: str
    colour: str
    size: str
    pattern: str
    x_offset: int = 0
    """Horizontal shift of the centre in pixels of the final image."""
    y_offset: int = 0

    def value(self, key: str) -> str:
        return getattr(self, key)

    def report(self) -> str:
        """Return the attribute report, one `key: value` line per attribute."""
        return "\n".join(f"{key}: {self.value(key)}" for key in ATTRIBUTE_KEYS)


def sample_objects(
    count: int,
    rng: random.Random,
    colours: Sequence[str],
    patterns: Sequence[str],
) -> list[WorldObject]:
    """Draw `count` objects with uniform attributes from the given value sets."""
    objects = []
    for _ in range(count):
        objects.append(
            WorldObject(
                shape=rng.choice(SHAPES),
                colour=rng.choice(list(colours)),
                size=rng.choice(SIZES),
                pattern=rng.choice(list(patterns)),
                x_offset=rng.randint(-3, 3),
                y_offset=rng.randint(-3, 3),
            )
        )
    return objects


def _outline(shape: str, centre: tuple[float, float], radius: float) -> list[tuple[float, float]] | None:
    """Return the polygon of a shape, or None for the circle (drawn as an ellipse)."""
    cx, cy = centre
    if shape == "square":
        r = radius * 0.85
        return [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if shape == "triangle":
        return [(cx, cy - radius), (cx + radius, cy + radius * 0.8), (cx - radius, cy + radius * 0.8)]
    if shape == "diamond":
        return [(cx, cy - radius), (cx + radius, cy), (cx, cy + radius), (cx - radius, cy)]
    if shape == "circle":
        return None
    raise ValueError(f"Unknown shape {shape!r}; choose one of {', '.join(SHAPES)}.")


def _pattern_layer(pattern: str, colour: tuple[int, int, int], side: int) -> Image.Image:
    """Return a full-canvas fill texture; the shape's mask cuts it out."""
    period = 4 * _SUPERSAMPLING  # 4 px in the final image
    layer = Image.new("RGB", (side, side), colour)
    if pattern == "solid":
        return layer
    dark = tuple(channel // 3 for channel in colour)
    draw = ImageDraw.Draw(layer)
    if pattern == "striped":
        for y in range(0, side, period):
            draw.rectangle([0, y, side, y + period // 2 - 1], fill=dark)
    elif pattern == "checkered":
        for y in range(0, side, period):
            for x in range(0, side, period):
                if (x // period + y // period) % 2:
                    draw.rectangle([x, y, x + period - 1, y + period - 1], fill=dark)
    elif pattern == "dotted":
        layer = Image.new("RGB", (side, side), dark)
        draw = ImageDraw.Draw(layer)
        dot = period // 4
        for y in range(period // 2, side, period):
            for x in range(period // 2, side, period):
                draw.ellipse([x - dot, y - dot, x + dot, y + dot], fill=colour)
    else:
        raise ValueError(f"Unknown pattern {pattern!r}; choose one of {', '.join(PATTERNS)}.")
    return layer


def draw_image(obj: WorldObject, size: int = IMAGE_SIZE) -> Image.Image:
    """Render one object as an RGB image of `size` × `size` pixels."""
    side = size * _SUPERSAMPLING
    scale = side / IMAGE_SIZE
    radius = (12.0 if obj.size == "large" else 7.0) * scale
    centre = (side / 2 + obj.x_offset * scale, side / 2 + obj.y_offset * scale)

    mask = Image.new("L", (side, side), 0)
    mask_draw = ImageDraw.Draw(mask)
    polygon = _outline(obj.shape, centre, radius)
    if polygon is None:
        cx, cy = centre
        mask_draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=255)
    else:
        mask_draw.polygon(polygon, fill=255)

    canvas = Image.new("RGB", (side, side), BACKGROUND)
    canvas.paste(_pattern_layer(obj.pattern, RGB[obj.colour], side), (0, 0), mask)
    return canvas.resize((size, size), Image.Resampling.BOX)


def write_pairs(objects: Sequence[WorldObject], folder: Path, prefix: str = "item") -> list[Path]:
    """Write `<prefix>_NNNN.png` images with same-named `.txt` reports; return the image paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, obj in enumerate(objects):
        image_path = folder / f"{prefix}_{index:04d}.png"
        draw_image(obj).save(image_path)
        image_path.with_suffix(".txt").write_text(obj.report() + "\n", encoding="utf-8")
        paths.append(image_path)
    return paths
