"""Contact sheets, drawn: a `GridPlan` becomes one labelled PNG, from the images on disk.

`geometry` is pure (sizes and positions only), so the size cap is tested without drawing; `draw`
does the Pillow work. Thumbnails shrink until the whole sheet fits `max_side` pixels on its longer
side, so a 40 x 40 sweep still gives a picture an image viewer opens.

Cells say what they are without a legend: an image; FAILED in red with the job's error; a
crossed grey "not generated" for a combination the run has not produced (yet).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from PIL import Image, ImageDraw, ImageFont, ImageOps

from batchgen.views.gridplan import Cell, GridError, GridPlan, show_value
from batchgen.views.rundata import image_path

__all__ = ["DEFAULT_MAX_SIDE", "DEFAULT_THUMB", "MIN_THUMB", "Geometry", "draw", "geometry"]

DEFAULT_THUMB: Final = 256
DEFAULT_MAX_SIDE: Final = 6000
MIN_THUMB: Final = 32

_BG: Final = (255, 255, 255)
_INK: Final = (20, 20, 20)
_MUTED: Final = (110, 110, 110)
_FAILED_BG: Final = (253, 226, 226)
_FAILED_INK: Final = (170, 20, 20)
_MISSING_BG: Final = (236, 236, 236)


@dataclass(frozen=True)
class Geometry:
    """Where everything goes, in pixels."""

    cell: int  # side of a (square) cell
    font: int  # label font size
    left: int  # width of the y-label column
    header: int  # height of the title band
    panel_title: int  # height of each panel's title (0 for a single panel)
    axis: int  # height of the x-label band above each panel's cells
    footer: int
    cols: int
    rows: int
    panels: int

    @property
    def panel_height(self) -> int:
        return self.panel_title + self.axis + self.rows * self.cell

    @property
    def width(self) -> int:
        return self.left + self.cols * self.cell + self.font

    @property
    def height(self) -> int:
        return self.header + self.panels * self.panel_height + self.footer

    def cell_box(self, panel: int, row: int, col: int) -> tuple[int, int, int, int]:
        x0 = self.left + col * self.cell
        y0 = self.header + panel * self.panel_height + self.panel_title + self.axis
        y0 += row * self.cell
        return x0, y0, x0 + self.cell, y0 + self.cell


def _sized(cell: int, cols: int, rows: int, panels: int) -> Geometry:
    font = max(11, min(22, cell // 12))
    return Geometry(
        cell=cell,
        font=font,
        left=max(8 * font, cell * 3 // 4),
        header=font * 4,
        panel_title=font * 2 + 6 if panels > 1 else 0,
        axis=font * 2 + 6,
        footer=font * 3,
        cols=cols,
        rows=rows,
        panels=panels,
    )


def geometry(
    cols: int, rows: int, panels: int, thumb: int = DEFAULT_THUMB, max_side: int = DEFAULT_MAX_SIDE
) -> Geometry:
    """The largest cells up to `thumb` for which the sheet fits `max_side`; raises GridError."""
    cell = thumb
    while True:
        shape = _sized(cell, cols, rows, panels)
        longest = max(shape.width, shape.height)
        if longest <= max_side:
            return shape
        if cell <= MIN_THUMB:
            raise GridError(
                f"{cols} x {rows} cells in {panels} panel(s) do not fit in {max_side} px even as "
                f"{MIN_THUMB} px thumbnails: raise --max-size or pin parameters with --where"
            )
        cell = max(MIN_THUMB, min(cell - 1, cell * max_side // longest))


def draw(plan: GridPlan, folder: Path, shape: Geometry, note: str = "") -> Image.Image:
    """The contact sheet of `plan`, reading images from `folder`."""
    sheet = Image.new("RGB", (shape.width, shape.height), _BG)
    pen = ImageDraw.Draw(sheet)
    font, small = _font(shape.font), _font(max(10, shape.font - 3))
    title = f"x: {plan.x}  ->      y: {plan.y}  (down)"
    pen.text((shape.font, shape.font // 2), title, fill=_INK, font=font)
    fixed = [*plan.where, *plan.constant]
    subtitle = "   ".join(f"{k}={_short(show_value(v), 60)}" for k, v in fixed)
    _line(pen, (shape.font, shape.font * 2), subtitle, small, shape.width - 2 * shape.font)
    for p, panel in enumerate(plan.panels):
        top = shape.header + p * shape.panel_height
        if shape.panel_title:
            text = "   ".join(f"{k}={show_value(v)}" for k, v in panel.fixed)
            pen.rectangle((0, top, shape.width, top + shape.panel_title - 4), fill=(232, 238, 250))
            _line(pen, (shape.font, top + 4), text, font, shape.width - 2 * shape.font)
        axis_top = top + shape.panel_title
        for c, value in enumerate(plan.xs):
            x0 = shape.left + c * shape.cell
            text = f"{plan.x}={show_value(value)}"
            _line(pen, (x0 + 4, axis_top + shape.font // 2), text, font, shape.cell - 8)
        for r, value in enumerate(plan.ys):
            y0 = axis_top + shape.axis + r * shape.cell
            text = f"{plan.y}={show_value(value)}"
            _wrapped(pen, (4, y0 + 4), text, font, shape.left - 8, shape.cell - 8)
            for c, cell in enumerate(panel.rows[r]):
                _cell(sheet, pen, cell, shape.cell_box(p, r, c), folder, small)
    counts = f"{plan.count('image')} images, {plan.count('failed')} failed, "
    counts += f"{plan.count('missing')} not generated"
    footer = f"{counts}{'   ' + note if note else ''}"
    _line(pen, (shape.font, shape.height - shape.footer + shape.font // 2), footer, small,
          shape.width - 2 * shape.font)  # fmt: skip
    return sheet


def _cell(
    sheet: Image.Image,
    pen: ImageDraw.ImageDraw,
    cell: Cell,
    box: tuple[int, int, int, int],
    folder: Path,
    font: ImageFont.FreeTypeFont,
) -> None:
    x0, y0, x1, y1 = box
    inner = (x0 + 2, y0 + 2, x1 - 2, y1 - 2)
    side = x1 - x0 - 4
    if cell.status == "image":
        thumb = _thumbnail(folder, cell.file, side)
        if thumb is not None:
            sheet.paste(
                thumb, (x0 + 2 + (side - thumb.width) // 2, y0 + 2 + (side - thumb.height) // 2)
            )
            if cell.more:
                at = (x0 + 6, y1 - int(font.size) - 6)
                text = f"+{cell.more} more"
                pen.text(at, text, fill=_BG, font=font, stroke_width=2, stroke_fill=_INK)
            return
        pen.rectangle(inner, fill=_MISSING_BG, outline=_FAILED_INK)
        _wrapped(pen, (x0 + 6, y0 + 6), f"image file missing: {cell.file}", font, side - 8,
                 side - 8, _FAILED_INK)  # fmt: skip
    elif cell.status == "failed":
        pen.rectangle(inner, fill=_FAILED_BG, outline=_FAILED_INK, width=2)
        pen.text((x0 + 6, y0 + 6), "FAILED", fill=_FAILED_INK, font=font)
        _wrapped(pen, (x0 + 6, y0 + 10 + int(font.size)), cell.error or "failed", font, side - 8,
                 side - 16 - int(font.size), _FAILED_INK)  # fmt: skip
    else:
        pen.rectangle(inner, fill=_MISSING_BG)
        pen.line((x0 + 2, y0 + 2, x1 - 2, y1 - 2), fill=(205, 205, 205), width=2)
        pen.line((x0 + 2, y1 - 2, x1 - 2, y0 + 2), fill=(205, 205, 205), width=2)
        pen.text((x0 + 6, y0 + 6), "not generated", fill=_MUTED, font=font)


def _thumbnail(folder: Path, relative: str | None, side: int) -> Image.Image | None:
    path = image_path(folder, relative or "")
    if path is None:
        return None
    try:
        with Image.open(path) as image:
            image.draft("RGB", (side, side))  # JPEG: decode at a reduced scale, much faster
            return ImageOps.contain(image.convert("RGB"), (side, side))
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


Measure = Callable[[str], float]


def _font(size: int) -> ImageFont.FreeTypeFont:
    """Pillow's bundled font (no system fonts needed), at `size` px."""
    font = ImageFont.load_default(size=size)
    if not isinstance(font, ImageFont.FreeTypeFont):  # Pillow built without FreeType
        raise GridError("this Pillow has no FreeType support: cannot draw labels")
    return font


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _fit(text: str, measure: Measure, width: int) -> str:
    """`text`, cut with an ellipsis to fit `width` pixels."""
    if measure(text) <= width:
        return text
    while text and measure(text + "…") > width:
        text = text[:-1]
    return text + "…"


def _line(
    pen: ImageDraw.ImageDraw,
    at: tuple[int, int],
    text: str,
    font: ImageFont.FreeTypeFont,
    width: int,
    fill: tuple[int, int, int] = _INK,
) -> None:
    pen.text(at, _fit(text, font.getlength, width), fill=fill, font=font)


def _wrapped(
    pen: ImageDraw.ImageDraw,
    at: tuple[int, int],
    text: str,
    font: ImageFont.FreeTypeFont,
    width: int,
    height: int,
    fill: tuple[int, int, int] = _INK,
) -> None:
    """Word-wrap `text` into the box; what does not fit ends in an ellipsis."""
    lines: list[str] = []
    for word in text.split():
        if lines and font.getlength(lines[-1] + " " + word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    step = int(int(font.size) * 1.2)
    room = max(1, height // step)
    if len(lines) > room:
        lines = [*lines[: room - 1], " ".join(lines[room - 1 :])]
    x, y = at
    for i, line in enumerate(lines):
        pen.text((x, y + i * step), _fit(line, font.getlength, width), fill=fill, font=font)
