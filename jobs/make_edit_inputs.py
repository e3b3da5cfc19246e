"""Regenerate jobs/inputs/*.png: six small product pictures for jobs/edit.yaml, deterministically.

Run from the repository root: `python jobs/make_edit_inputs.py`. The PNGs are committed (a few KB
each); this script is their recipe, so they can be reviewed and changed as code.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

# (name, background, object colour, shape)
ITEMS = [
    ("mug", (236, 228, 214), (176, 52, 44), "mug"),
    ("lamp", (214, 226, 236), (222, 178, 40), "lamp"),
    ("chair", (228, 236, 214), (96, 64, 40), "chair"),
    ("vase", (236, 214, 228), (40, 96, 150), "vase"),
    ("sneaker", (226, 226, 226), (30, 30, 30), "sneaker"),
    ("teapot", (240, 232, 200), (60, 130, 90), "teapot"),
]
SIZE = (96, 72)


def draw(background: tuple[int, int, int], colour: tuple[int, int, int], shape: str) -> Image.Image:
    image = Image.new("RGB", SIZE, background)
    pen = ImageDraw.Draw(image)
    pen.rectangle((0, 56, 96, 72), fill=tuple(c - 30 for c in background))  # a table top
    if shape == "mug":
        pen.rectangle((34, 24, 58, 58), fill=colour)
        pen.ellipse((54, 32, 68, 48), outline=colour, width=4)
    elif shape == "lamp":
        pen.polygon([(30, 36), (66, 36), (56, 14), (40, 14)], fill=colour)
        pen.rectangle((46, 36, 50, 56), fill=(80, 80, 80))
        pen.rectangle((38, 54, 58, 58), fill=(80, 80, 80))
    elif shape == "chair":
        pen.rectangle((32, 12, 38, 58), fill=colour)
        pen.rectangle((32, 36, 62, 42), fill=colour)
        pen.rectangle((56, 42, 62, 58), fill=colour)
    elif shape == "vase":
        pen.ellipse((32, 26, 64, 58), fill=colour)
        pen.rectangle((42, 14, 54, 30), fill=colour)
    elif shape == "sneaker":
        pen.chord((22, 34, 74, 66), 180, 360, fill=colour)
        pen.rectangle((22, 50, 78, 56), fill=(245, 245, 245))
    else:
        pen.ellipse((30, 28, 66, 58), fill=colour)
        pen.polygon([(64, 36), (80, 28), (66, 46)], fill=colour)
        pen.rectangle((44, 22, 52, 28), fill=colour)
    return image


def main() -> None:
    folder = Path(__file__).parent / "inputs"
    folder.mkdir(exist_ok=True)
    for name, background, colour, shape in ITEMS:
        draw(background, colour, shape).save(folder / f"{name}.png", format="PNG", optimize=True)


if __name__ == "__main__":
    main()
