"""PDF documents for people to file or print — statements, receipts, reports: a title, the facts that
identify the document, one table and a footer, in a font with Chinese glyphs.

PDF core fonts have no Chinese, so a CJK font is embedded (subset to the glyphs used: a statement is a few
kilobytes). It is the one ``CITYHUB_PDF_FONT`` names, else the first of Debian's CJK font packages found;
without one, a PDF is refused with a clear 503 and the same data stays available as CSV.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import Align, TableCellFillMode
from fpdf.fonts import FontFace

from cityhub.kernel.errors import Problem
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.settings import Settings

KNOWN_CJK_FONTS = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
)
FAMILY = "cjk"


class NoPdfFont(Problem):
    status = 503
    slug = "pdf-unavailable"


@dataclass(frozen=True)
class Column:
    title: str
    width: float = 1.0  # relative to the other columns
    numeric: bool = False  # right-aligned (amounts, counts)


@dataclass(frozen=True)
class Document:
    title: str
    facts: Sequence[tuple[str, str]]  # (label, value) pairs under the title
    columns: Sequence[Column]
    rows: Sequence[Sequence[str]]
    totals: Sequence[tuple[str, str]] = field(default_factory=tuple)  # (label, value) under the table
    footer: str = ""


def cjk_font(settings: Settings) -> Path:
    """The font PDFs are set in; a 503 problem when the platform has none."""
    candidates = (settings.pdf_font,) if settings.pdf_font is not None else KNOWN_CJK_FONTS
    for candidate in candidates:
        if candidate is not None and candidate.is_file():
            return candidate
    raise NoPdfFont(
        _("PDF documents need a font with Chinese characters (CITYHUB_PDF_FONT); download the CSV instead.")
    )


def render(document: Document, font: Path) -> bytes:
    """The document as an A4 PDF, the table breaking across pages with its heading repeated."""
    pdf = FPDF(format="A4")
    pdf.set_creator("cityhub")
    pdf.set_title(document.title)
    pdf.add_font(FAMILY, fname=str(font))
    pdf.set_margins(15, 15, 15)
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_page()
    pdf.set_font(FAMILY, size=16)
    pdf.cell(text=document.title, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font(FAMILY, size=10)
    _pairs(pdf, document.facts)
    pdf.ln(3)
    _table(pdf, document.columns, document.rows)
    pdf.ln(3)
    _pairs(pdf, document.totals)
    if document.footer:
        pdf.ln(4)
        pdf.set_font(FAMILY, size=8)
        pdf.multi_cell(0, text=document.footer)
    return bytes(pdf.output())


def _pairs(pdf: FPDF, pairs: Sequence[tuple[str, str]]) -> None:
    for label, value in pairs:
        pdf.cell(45, 6, text=label)
        pdf.cell(text=value, new_x="LMARGIN", new_y="NEXT")


def _table(pdf: FPDF, columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> None:
    alignment = tuple(Align.R if column.numeric else Align.L for column in columns)
    with pdf.table(
        col_widths=tuple(column.width for column in columns),
        text_align=alignment,
        cell_fill_mode=TableCellFillMode.ROWS,
        cell_fill_color=245,
        line_height=6,
        repeat_headings=1,
        headings_style=FontFace(emphasis="", fill_color=220),  # the font has no bold face
    ) as table:
        table.row([column.title for column in columns])
        for values in rows:
            table.row(list(values))
