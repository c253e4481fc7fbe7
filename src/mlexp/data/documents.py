"""Generated financial documents with exact ground truth: annual reports, statements, pay stubs.

Pages are drawn at 200 dpi with Debian's fonts (a family per document from fonts-dejavu-core and
fonts-noto-core for Latin, ₹ £ $ ¥ °; fonts-wqy-microhei for 元), and every piece of text, table cell,
key-value pair and check box is recorded where it was drawn. The ground truth is a document in the output schema of
document_extraction (docs/tasks/document_extraction.md), so a prediction and its truth compare field by field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

DPI = 200
WIDTH = 1700  # 8.5 in at 200 dpi: page-wide tables span this
MARGIN = 110
_DEJAVU, _NOTO = Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/truetype/noto")
# each document is set in one family (regular, bold), all with ₹ £ $ ¥ ° (fonts-dejavu-core, fonts-noto-core)
FAMILIES = {
    "DejaVu Sans": (_DEJAVU / "DejaVuSans.ttf", _DEJAVU / "DejaVuSans-Bold.ttf"),
    "DejaVu Serif": (_DEJAVU / "DejaVuSerif.ttf", _DEJAVU / "DejaVuSerif-Bold.ttf"),
    "DejaVu Sans Mono": (_DEJAVU / "DejaVuSansMono.ttf", _DEJAVU / "DejaVuSansMono-Bold.ttf"),
    "Noto Sans": (_NOTO / "NotoSans-Regular.ttf", _NOTO / "NotoSans-Bold.ttf"),
    "Noto Serif": (_NOTO / "NotoSerif-Regular.ttf", _NOTO / "NotoSerif-Bold.ttf"),
}
CHECK_MARKS = ("x", "tick", "filled")
WRAP_LEADING = 34  # px between the lines of a wrapped cell (1.3 text heights); rows are 52-62 px apart
CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
DOCUMENT_TYPES = ("annual_report", "account_statement", "pay_stub", "bank_statement")
SYMBOLS = ("₹", "£", "$", "¥", "元", "°")

NAMES = ["Asha Verma", "Oliver Hughes", "Maria Lopez", "Kenji Sato", "Li Wei", "Grace Miller", "Ravi Patel"]
COMPANIES = ["Northwind Traders", "Contoso Ltd", "Fabrikam Inc", "Tailspin Toys", "Woodgrove Bank"]
SECURITIES = ["ACME Corp", "Globex Fund", "Initech Bond 2027", "Umbrella Pharma", "Stark Energy", "Wayne Retail"]
ACTIVITIES = ["Buy", "Sell", "Dividend", "Reinvest", "Interest", "Fee", "Transfer in"]


class FontBook:
    """TrueType fonts by size, loaded once (a page uses three or four sizes)."""

    def __init__(self) -> None:
        self._fonts: dict[tuple[Path, int], ImageFont.FreeTypeFont] = {}

    def get(self, text: str, size: int, bold: bool = False, family: str = "DejaVu Sans") -> ImageFont.FreeTypeFont:
        # DejaVu and Noto Sans have no CJK glyphs: a string with 元 is drawn in WenQuanYi Micro Hei
        path = CJK_FONT if any("\u4e00" <= ch <= "\u9fff" for ch in text) else FAMILIES[family][int(bold)]
        key = (path, size)
        if key not in self._fonts:
            self._fonts[key] = ImageFont.truetype(str(path), size)
        return self._fonts[key]


FONTS = FontBook()


@dataclass
class Page:
    """A drawn page and its ground truth in the output schema (boxes are [x0, y0, x1, y1] pixels)."""

    image: Image.Image
    lines: list[dict[str, Any]] = field(default_factory=list)
    tables: list[dict[str, Any]] = field(default_factory=list)
    key_values: list[dict[str, Any]] = field(default_factory=list)
    selection_elements: list[dict[str, Any]] = field(default_factory=list)
    family: str = "DejaVu Sans"
    box_size: int = 30
    mark: str = "x"

    @classmethod
    def blank(cls, rng: np.random.Generator, height: float) -> Page:
        """An empty page in a font family, check-box size and check mark drawn for this document."""
        return cls(
            Image.new("RGB", (WIDTH, int(height)), "white"),
            family=str(rng.choice(list(FAMILIES))),
            box_size=int(rng.integers(22, 40)),
            mark=str(rng.choice(CHECK_MARKS)),
        )

    def font(self, text: str, size: int = 26, bold: bool = False) -> ImageFont.FreeTypeFont:
        return FONTS.get(text, size, bold, self.family)

    @property
    def draw(self) -> ImageDraw.ImageDraw:
        return ImageDraw.Draw(self.image)

    def text(self, x: float, y: float, text: str, size: int = 26, bold: bool = False, right: bool = False) -> list[int]:
        """Draw `text` with its top-left (or top-right) at (x, y); record it as a line; return its box."""
        font = self.font(text, size, bold)
        x0, y0, x1, y1 = self.draw.textbbox((0, 0), text, font=font)
        left = x - (x1 - x0) if right else x
        self.draw.text((left - x0, y - y0), text, font=font, fill=(20, 20, 20))
        box = [int(left), int(y), int(left + x1 - x0), int(y + y1 - y0)]
        self.lines.append({"text": text, "box": box})
        return box

    def checkbox(self, x: float, y: float, selected: bool, label: str) -> None:
        """A square box (marked with the document's X, tick or fill when selected) and its label to the right."""
        draw, size, ink = self.draw, self.box_size, (20, 20, 20)
        draw.rectangle([x, y, x + size, y + size], outline=ink, width=2 if size < 28 else 3)
        pad = size * 0.22
        if selected and self.mark == "x":
            draw.line([x + pad, y + pad, x + size - pad, y + size - pad], fill=ink, width=4)
            draw.line([x + pad, y + size - pad, x + size - pad, y + pad], fill=ink, width=4)
        elif selected and self.mark == "tick":
            tick = [(x + pad, y + size * 0.55), (x + size * 0.42, y + size - pad), (x + size - pad, y + pad)]
            draw.line(tick, fill=ink, width=4, joint="curve")
        elif selected:
            draw.rectangle([x + pad, y + pad, x + size - pad, y + size - pad], fill=ink)
        label_box = self.text(x + size + 18, y + (size - 26) / 2, label)
        state = "SELECTED" if selected else "NOT_SELECTED"
        box = [int(x), int(y), int(x + size), int(y + size)]
        self.selection_elements.append({"box": box, "state": state, "label": label, "label_box": label_box})

    def key_value(self, x: float, y: float, key: str, value: str, value_x: float) -> None:
        key_box = self.text(x, y, f"{key}:", bold=True)
        value_box = self.text(value_x, y, value)
        self.key_values.append({"key": key, "value": value, "key_box": key_box, "value_box": value_box})


def _money(rng: np.random.Generator, symbol: str, low: float = 10, high: float = 99_999) -> str:
    amount = f"{rng.uniform(low, high):,.2f}"
    # yuan is written after the amount (1,234.00 元); the other symbols before it, with or without a space
    if symbol == "元":
        return f"{amount} 元"
    return f"{symbol}{amount}" if rng.random() < 0.5 else f"{symbol} {amount}"


def _table(
    page: Page,
    header: list[str],
    rows: list[list[str]],
    lefts: Sequence[float],
    rights: list[bool],
    y: float,
    row_height: int,
    ruled: bool,
) -> float:
    """Draw a table: column c's text starts at lefts[c] (or ends there when rights[c]); record its cells."""
    cells = []
    top = y
    for r, row in enumerate([header, *rows]):
        # a value holding "\n" is a cell wrapped onto several lines, at a line spacing tighter than the rows'
        height = row_height + WRAP_LEADING * max(v.count("\n") for v in row)
        for c, value in enumerate(row):
            boxes = [
                page.text(lefts[c], y + k * WRAP_LEADING, part, bold=r == 0, right=rights[c])
                for k, part in enumerate(value.split("\n"))
                if part
            ]
            box = _union(boxes) if boxes else [int(lefts[c]), int(y), int(lefts[c]), int(y)]
            text = value.replace("\n", " ")
            cells.append({"row": r, "column": c, "row_span": 1, "column_span": 1, "text": text, "box": box})
        if ruled:
            page.draw.line([MARGIN, y + height - 14, WIDTH - MARGIN, y + height - 14], fill=(90, 90, 90), width=2)
        y += height
    box = [MARGIN, int(top), WIDTH - MARGIN, int(y)]
    page.tables.append({"box": box, "rows": len(rows) + 1, "columns": len(header), "cells": cells})
    return y


def _union(boxes: list[list[int]]) -> list[int]:
    return [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]


def _wrap(page: Page, text: str, width: float) -> str:
    """`text` broken at spaces into lines no wider than `width` ("\n" between them)."""
    lines: list[str] = []
    for word in text.split():
        if lines and page.font(f"{lines[-1]} {word}").getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return "\n".join(lines)


def _columns(
    page: Page, rng: np.random.Generator, table: list[list[str]], rights: list[bool], widest: float
) -> list[float]:
    """Where each column is anchored (its left edge, or its right edge when right-aligned): columns packed
    from the margin with gutters of 1-3 characters drawn per document, the spare width after a random column."""
    char = page.font("0").getlength("0")
    widths = [
        max(page.font(v, bold=r == 0).getlength(v) for r, row in enumerate(table) for v in [row[c]] if v or r == 0)
        for c in range(len(table[0]))
    ]
    gutters = [float(rng.uniform(1, 3)) * char for _ in widths[1:]]
    spare = max(0.0, widest - sum(widths) - sum(gutters))
    after = int(rng.integers(0, len(widths) - 1))  # never after the last column: the table spans the page
    anchors, x = [], float(MARGIN)
    for c, width in enumerate(widths):
        anchors.append(x + width if rights[c] else x)
        x += width + (gutters[c] if c < len(gutters) else 0) + (spare if c == after else 0)
    return anchors


def annual_report(rng: np.random.Generator, n_rows: int) -> Page:
    """A company's annual-report table: revenue by region in ₹ £ $ ¥ 元, and site latitudes in degrees."""
    page = Page.blank(rng, 400 + 62 * (n_rows + 1))
    company = str(rng.choice(COMPANIES))
    page.text(MARGIN, 70, f"{company} Annual Report {int(rng.integers(2015, 2021))}", size=38, bold=True)
    page.text(MARGIN, 140, "Revenue by region, in local currency (figures in thousands)")
    regions = [("India", "₹"), ("United Kingdom", "£"), ("United States", "$"), ("Japan", "¥"), ("China", "元")]
    units = ["Retail", "Wholesale", "Services", "Online"]
    rows = []
    for r in range(n_rows):
        region, symbol = regions[r % len(regions)]
        latitude = f"{rng.uniform(1, 60):.1f}° {'N' if rng.random() < 0.8 else 'S'}"
        rows.append(
            [f"{region} {units[int(rng.integers(len(units)))]}", _money(rng, symbol), _money(rng, symbol), latitude]
        )
    header = ["Segment", "Revenue this year", "Revenue last year", "Site latitude"]
    end = _table(page, header, rows, [MARGIN, 880, 1240, 1590], [False, True, True, True], 230, 62, ruled=True)
    page.text(MARGIN, end + 30, f"Average plant temperature {rng.uniform(15, 40):.1f}°C; yuan figures shown as 元.")
    return page


def account_statement(rng: np.random.Generator, n_rows: int) -> Page:
    """A personal investment account statement: a page-wide table whose columns are separated only by whitespace."""
    page = Page.blank(rng, 460 + 104 * (n_rows + 1))
    symbol = str(rng.choice(["$", "£", "₹"]))
    page.text(MARGIN, 70, "Personal Investment Account Statement", size=38, bold=True)
    page.text(
        MARGIN, 140, f"{rng.choice(NAMES)}   Account {int(rng.integers(1000, 9999))}-{int(rng.integers(100, 999))}"
    )
    page.text(MARGIN, 190, f"Statement period 01/{int(rng.integers(1, 12)):02d}/2020 to month end, amounts in {symbol}")
    balance = float(rng.uniform(5_000, 50_000))
    rows = []
    for _ in range(n_rows):
        activity = str(rng.choice(ACTIVITIES))
        security = str(rng.choice(SECURITIES))
        priced = activity in ("Buy", "Sell", "Reinvest")
        quantity = f"{rng.uniform(1, 500):.3f}" if priced else ""
        price = f"{rng.uniform(5, 900):,.2f}" if priced else ""
        amount = float(rng.uniform(-5_000, 5_000))
        balance += amount
        date = f"{int(rng.integers(1, 12)):02d}/{int(rng.integers(1, 28)):02d}/2020"
        rows.append([date, f"{activity} {security}", quantity, price, f"{amount:,.2f}", f"{balance:,.2f}"])
    header = ["Date", "Description", "Quantity", "Price", "Amount", "Balance"]
    rights = [False, False, True, True, True, True]
    if rng.random() < 0.3:
        # a column some statements print and never fill (a reference column): its header is its only text
        header.insert(2, "Ref")
        rights.insert(2, False)
        rows = [[*row[:2], "", *row[2:]] for row in rows]
    if rng.random() < 0.4:
        # a narrow description column: long descriptions wrap onto a second line within their row
        limit = float(rng.uniform(0.55, 0.8)) * max(page.font(row[1]).getlength(row[1]) for row in rows)
        rows = [
            [
                row[0],
                _wrap(page, row[1], max(limit, page.font("Description", bold=True).getlength("Description"))),
                *row[2:],
            ]
            for row in rows
        ]
    table = [header, *rows]
    # whitespace-only columns with gutters of 1-3 characters, at positions that differ per document
    lefts = _columns(
        page, rng, [[max(v.split("\n"), key=len) for v in row] for row in table], rights, WIDTH - 2 * MARGIN
    )
    end = _table(page, header, rows, lefts, rights, 270, 52, ruled=False)
    page.image = page.image.crop((0, 0, WIDTH, int(end) + 80))  # the page was drawn tall enough for every wrap
    return page


def _form(
    rng: np.random.Generator, title: str, fields: list[tuple[str, str]], groups: list[tuple[str, list[str]]]
) -> Page:
    page = Page.blank(rng, 260 + 64 * ((len(fields) + 1) // 2) + 80 * len(groups))
    page.text(MARGIN, 70, title, size=38, bold=True)
    y = 160.0
    for i in range(0, len(fields), 2):
        for j, (key, value) in enumerate(fields[i : i + 2]):
            left = MARGIN + j * 780
            page.key_value(left, y, key, value, left + 300)
        y += 64
    y += 20
    for name, options in groups:
        page.text(MARGIN, y + 3, name, bold=True)
        x = float(MARGIN + 360)
        for option in options:
            page.checkbox(x, y, bool(rng.random() < 0.5), option)
            x += page.box_size + 18 + page.font(option).getlength(option) + 70
        y += 80
    return page


def pay_stub(rng: np.random.Generator, n_rows: int) -> Page:
    """An earnings statement: employee and pay fields as key-values, pay method and tax status as check boxes."""
    symbol = str(rng.choice(["$", "£", "₹", "¥"]))
    gross = rng.uniform(1_000, 9_000)
    fields = [
        ("Employee name", str(rng.choice(NAMES))),
        ("Employee ID", f"E-{int(rng.integers(10000, 99999))}"),
        ("Employer", str(rng.choice(COMPANIES))),
        ("Pay date", f"{int(rng.integers(1, 12)):02d}/{int(rng.integers(1, 28)):02d}/2020"),
        ("Gross pay", _money(rng, symbol, gross, gross)),
        ("Net pay", _money(rng, symbol, gross * 0.6, gross * 0.8)),
        ("Federal tax", _money(rng, symbol, gross * 0.1, gross * 0.2)),
        ("Hours worked", f"{rng.uniform(60, 90):.2f}"),
    ][: max(2, n_rows)]
    groups = [
        ("Pay method", ["Direct deposit", "Paper check"]),
        ("Filing status", ["Single", "Married", "Head of household"]),
        ("Pay frequency", ["Weekly", "Biweekly", "Monthly"]),
    ]
    return _form(rng, f"{rng.choice(COMPANIES)} Earnings Statement", fields, groups)


def bank_statement(rng: np.random.Generator, n_rows: int) -> Page:
    """A bank statement's summary: account fields as key-values, account type and options as check boxes."""
    symbol = str(rng.choice(["$", "£", "₹", "¥", "元"]))
    fields = [
        ("Account holder", str(rng.choice(NAMES))),
        ("Account number", f"{int(rng.integers(10**7, 10**8))}"),
        ("Statement date", f"{int(rng.integers(1, 28)):02d}/{int(rng.integers(1, 12)):02d}/2020"),
        ("Branch", str(rng.choice(["Mumbai", "Leeds", "Boston", "Osaka", "Shanghai"]))),
        ("Opening balance", _money(rng, symbol, 100, 20_000)),
        ("Closing balance", _money(rng, symbol, 100, 20_000)),
    ][: max(2, n_rows)]
    groups = [
        ("Account type", ["Checking", "Savings", "Joint"]),
        ("Statements", ["Paperless", "Mailed"]),
    ]
    return _form(rng, "Woodgrove Bank Account Summary", fields, groups)


GENERATORS = {
    "annual_report": annual_report,
    "account_statement": account_statement,
    "pay_stub": pay_stub,
    "bank_statement": bank_statement,
}


def generate(document_type: str, seed: int, index: int, n_rows: int) -> Page:
    """Document `index` of `document_type`, the same for the same seed."""
    rng = np.random.default_rng([seed, DOCUMENT_TYPES.index(document_type), index])
    return GENERATORS[document_type](rng, n_rows)
