"""Whitespace measured on the page's ink: the word space of the page and the gutters of a table.

OCR word boxes are padded or shrunk by a few pixels, and a reader can join two cells across a narrow gutter
into one token, so a fixed gap in text heights cannot tell a word space (≈ 0.3 em) from a one-digit gutter
(≈ 0.6 em). The ink can: a gutter is an x-range left blank by *every* row of a table (word spaces sit at a
different x in each row), at least `gutter_spaces` times the page's own word space, measured as the median
blank run between the words OCR read on one line.
"""

from __future__ import annotations

from statistics import median

import cv2
import numpy as np

from mlexp.tasks.document_extraction.structure import Line, Word

# a pixel column with at most this many ink pixels over a band is blank (a scan speck is one or two)
SPECK_PIXELS = 2


def ink_mask(image: np.ndarray, text_height: float) -> np.ndarray:
    """Text ink as a boolean image: darker than 0.6 × the local background (so uneven lighting does not flood
    it), without ruling lines (a rule under a row or between columns is not text and must not fill a gutter)."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    size = max(3, int(2 * text_height) | 1)
    # the background is the page with its text closed over: a grey-level dilation wider than a glyph
    background = cv2.dilate(gray, cv2.getStructuringElement(cv2.MORPH_RECT, (size, size)))
    ink = (gray.astype(np.float32) < 0.6 * np.maximum(background.astype(np.float32), 1.0)).astype(np.uint8)
    long = max(3, int(4 * text_height))
    across = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (long, 1)))
    down = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, long)))
    rules = np.asarray(across > 0) | np.asarray(down > 0)
    return np.asarray(ink > 0) & ~rules


def blank_columns(mask: np.ndarray, spans: list[tuple[float, float]], x0: float, x1: float) -> np.ndarray:
    """For each x in [x0, x1): whether no band among `spans` (y-ranges) has ink there."""
    height, width = mask.shape
    a, b = max(0, int(x0)), min(width, int(np.ceil(x1)))
    counts = np.zeros(max(0, b - a), dtype=np.int32)
    for top, bottom in spans:
        t, u = max(0, int(top)), min(height, int(np.ceil(bottom)))
        if u > t and b > a:
            # per band: a speck is forgiven in each band, so a tall table does not collect them into a column
            band = mask[t:u, a:b].sum(axis=0)
            counts += band > SPECK_PIXELS
    return np.asarray(counts == 0)


def blank_runs(blank: np.ndarray) -> list[tuple[int, int]]:
    """The [start, end) runs of True strictly inside the profile (ink on both sides)."""
    runs, start = [], None
    for i, value in enumerate(blank):
        if value and start is None:
            start = i
        elif not value and start is not None:
            if start > 0:
                runs.append((start, i))
            start = None
    return runs


def word_space(mask: np.ndarray, lines: list[Line]) -> float | None:
    """The page's word space: the median widest blank run between two words OCR read on one line."""
    gaps = []
    for line in lines:
        for a, b in zip(line.words, line.words[1:]):
            left, right = (a.box[0] + a.box[2]) / 2, (b.box[0] + b.box[2]) / 2
            if right <= left:
                continue
            top, bottom = max(a.box[1], b.box[1]), min(a.box[3], b.box[3])
            if bottom - top < 0.3 * min(a.box[3] - a.box[1], b.box[3] - b.box[1]):
                continue
            runs = blank_runs(blank_columns(mask, [(top, bottom)], left, right))
            if runs:
                gaps.append(max(end - start for start, end in runs))
    return float(median(gaps)) if len(gaps) >= 5 else None


def digit_advance(mask: np.ndarray, lines: list[Line]) -> float | None:
    """The page's digit advance: the median distance between the ink centres of two adjacent digits of a number.

    Digits are set on one advance in every common typeface (tabular figures), and a digit's ink sits centred in it,
    so centre-to-centre is the advance. Only numbers whose ink falls into exactly one blank-separated piece per
    character are used (then piece k is character k); at least 5 digit pairs, else None.
    """
    pitches = []
    for line in lines:
        for word in line.words:
            text = word.text
            if sum(ch.isdigit() for ch in text) < 2 or not all(ch.isdigit() or ch in ",.-/" for ch in text):
                continue
            x0, y0, x1, y1 = word.box
            blank = blank_columns(mask, [(y0, y1)], x0, x1)
            pieces, start = [], None
            for i, value in enumerate([*blank, True]):
                if not value and start is None:
                    start = i
                elif value and start is not None:
                    pieces.append((start + i) / 2)
                    start = None
            if len(pieces) != len(text):
                continue
            pitches += [b - a for a, b, p, q in zip(pieces, pieces[1:], text, text[1:]) if p.isdigit() and q.isdigit()]
    return float(median(pitches)) if len(pitches) >= 5 else None


# a page is monospaced when its word space is at least this many digit advances: a monospaced font's word space
# is one advance plus two side bearings, a proportional font's about half a digit plus the bearings (measured on
# development pages, seeds 3-29 and 100-199, drawn words and RapidOCR's: 1.23-1.5 monospaced, 0.67-0.93 not)
MONOSPACED_SPACE_DIGITS = 1.1


def header_space(space: float, digit: float | None, fallback: float) -> float:
    """The widest blank between a header-only piece and its neighbour that is still a word space (pixels).

    The narrowest column gutter is one digit. In a proportional font a digit is about two spaces, so a gutter is
    well over a word space and `fallback` (`row_word_spaces` word spaces) tells them apart. In a monospaced font
    a digit is one space, so a one-digit gutter is as wide as a word space: there a blank of one word space or
    more next to a header-only piece is a gutter ("Ref Quantity" over a column of numbers is two headers), and
    a header whose own word space is narrower than the page's median still reads as one header. Without a digit
    advance: `fallback`.
    """
    if digit is not None and space >= MONOSPACED_SPACE_DIGITS * digit:
        return space
    return fallback


def gutters(mask: np.ndarray, rows: list[list[Word]], min_width: float) -> list[tuple[float, float]]:
    """The x-ranges of at least `min_width` that no row of the table puts ink in (page coordinates)."""
    x0 = min(w.box[0] for row in rows for w in row)
    x1 = max(w.box[2] for row in rows for w in row)
    spans = [(min(w.box[1] for w in row), max(w.box[3] for w in row)) for row in rows]
    blank = blank_columns(mask, spans, x0, x1)
    start = max(0, int(x0))
    return [(start + a, start + b) for a, b in blank_runs(blank) if b - a >= min_width]


def drop_word_spaces(
    mask: np.ndarray,
    rows: list[list[Word]],
    cuts: list[tuple[float, float]],
    word_gap: float,
    header_gap: float | None = None,
) -> list[tuple[float, float]]:
    """The gutters without those that are one row's word space: narrower than `word_gap` next to a column that
    only one row inks ("Site latitude" over a column of short values is one header, not two columns; a
    header-only column *with* a real gutter, such as an unused "Ref" column, stays). Next to a column that only
    the header row (the table's first row) inks, the limit is `header_gap` instead (`header_space`: one word
    space in a monospaced font); a column only one body row inks is a long cell's last word and keeps `word_gap`."""
    header_gap = word_gap if header_gap is None else header_gap
    spans = [(min(w.box[1] for w in row), max(w.box[3] for w in row)) for row in rows]
    x0 = min(w.box[0] for row in rows for w in row)
    x1 = max(w.box[2] for row in rows for w in row)
    cuts = list(cuts)
    while True:
        edges = [x0, *[v for cut in cuts for v in cut], x1]
        columns = [(edges[i], edges[i + 1]) for i in range(0, len(edges), 2)]
        inked = [[not blank_columns(mask, [span], a, b).all() for span in spans] for a, b in columns]
        # the widest word space next to each column: none when two rows or more ink it
        limits = [0.0 if sum(row) > 1 else header_gap if row[0] else word_gap for row in inked]
        narrow = [i for i, (a, b) in enumerate(cuts) if b - a < max(limits[i], limits[i + 1])]
        if not narrow:
            return cuts
        del cuts[min(narrow, key=lambda i: cuts[i][1] - cuts[i][0])]


def segments(mask: np.ndarray, band: list[Word], min_width: float) -> int:
    """How many pieces the band's ink falls into at blank runs of at least `min_width`."""
    return 1 + len(gutters(mask, [band], min_width))


def split_words(words: list[Word], cuts: list[tuple[float, float]]) -> list[Word]:
    """Each word that a gutter crosses (ink of the word on both sides) split there, its text by character share.

    A reader joins two cells across a narrow gutter into one token ("-4,644.2724,722.60"); the text is cut where
    the characters' estimated advance widths (digits and letters one unit, punctuation half) reach the gutter's
    share of the word's width, moved to a space when there is one within a character.
    """
    out: list[Word] = []
    for word in words:
        pieces = [word]
        for a, b in cuts:
            last = pieces[-1]
            x0, x1 = last.box[0], last.box[2]
            if not (x0 < a and b < x1) or len(last.text) < 2:
                continue
            share = ((a + b) / 2 - x0) / (x1 - x0)
            k = _split_index(last.text, share)
            spaces = [i for i, ch in enumerate(last.text) if ch == " " and abs(i - k) <= 1]
            if spaces:
                k = spaces[0]
            left, right = last.text[:k].strip(), last.text[k:].strip()
            if not left or not right:
                continue
            pieces[-1:] = [
                Word(left, [x0, last.box[1], a, last.box[3]], last.confidence),
                Word(right, [b, last.box[1], x1, last.box[3]], last.confidence),
            ]
        out.extend(pieces)
    return out


NARROW = set(" .,:;'!|-()[]/")


def _split_index(text: str, share: float) -> int:
    """Where `share` of the text's estimated width falls (between 1 and len - 1 characters)."""
    widths = [0.5 if ch in NARROW else 1.0 for ch in text]
    total, run = sum(widths), 0.0
    for i, width in enumerate(widths):
        if run + width / 2 >= share * total:
            return min(len(text) - 1, max(1, i))
        run += width
    return len(text) - 1
