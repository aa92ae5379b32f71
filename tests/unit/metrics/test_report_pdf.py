"""A report's PDF carries Persian shaped, not merely present: rendered to an image with
pdfium, a title set normally is measurably narrower in ink than the same letters forced
apart into their isolated forms (a zero-width non-joiner between every two), as joined
Persian script is; the page has ink where the title is, and pdfium reads the title back."""

from __future__ import annotations

import pypdfium2  # type: ignore[import-untyped]
from PIL import Image

from services.metrics import documents
from services.metrics.weekly_report_files import _STYLE

TITLE = "گزارش هفتگی استان لرستان"
ZWNJ = "\u200c"
SCALE = 2  # pixels per PDF point
BAND = {"shaped": (20, 60), "isolated": (100, 140)}  # each line's band, in millimetres


def _page() -> str:
    isolated = ZWNJ.join(TITLE)
    line = "position: absolute; right: 10mm; font-size: 24pt; white-space: nowrap; margin: 0;"
    return (
        f'<html lang="fa" dir="rtl"><head><style>{_STYLE}</style></head><body>'
        f'<h1 style="{line} top: 25mm">{TITLE}</h1>'
        f'<p style="{line} top: 105mm">{isolated}</p>'
        "</body></html>"
    )


def _ink_columns(image: Image.Image, top_mm: float, bottom_mm: float) -> list[int]:
    """The x of every pixel column with ink (darker than mid-grey) in a band of the page."""
    pixels_per_mm = SCALE * 72 / 25.4
    top, bottom = int(top_mm * pixels_per_mm), int(bottom_mm * pixels_per_mm)
    grey = image.convert("L")
    columns = []
    for x in range(grey.width):
        if any(grey.getpixel((x, y)) < 128 for y in range(top, bottom, 2)):  # type: ignore[operator]
            columns.append(x)
    return columns


async def test_persian_in_a_reports_pdf_is_shaped_right_to_left() -> None:
    pdf = await documents.render_pdf(_page())
    document = pypdfium2.PdfDocument(pdf)
    page = document[0]
    image = page.render(scale=SCALE).to_pil()
    shaped = _ink_columns(image, *BAND["shaped"])
    isolated = _ink_columns(image, *BAND["isolated"])
    assert shaped, "no ink where the title is"
    assert isolated, "no ink where the isolated letters are"
    shaped_width = shaped[-1] - shaped[0]
    isolated_width = isolated[-1] - isolated[0]
    # Joined letters are narrower than the same letters in their isolated forms.
    assert shaped_width < 0.93 * isolated_width, (shaped_width, isolated_width)
    # Right to left: both lines end at the same right margin.
    assert abs(shaped[-1] - isolated[-1]) < 6 * SCALE
    # pdfium reads the title back from the title's band alone.
    points_per_mm = 72 / 25.4
    height = page.get_height()
    top_mm, bottom_mm = BAND["shaped"]
    text = page.get_textpage().get_text_bounded(
        left=0,
        bottom=height - bottom_mm * points_per_mm,
        right=page.get_width(),
        top=height - top_mm * points_per_mm,
    )
    assert text.replace(" ", "") == TITLE.replace(" ", ""), text
