"""Tesseract (Debian's tesseract-ocr 5, English model) through pytesseract: the baseline's lines and words."""

from __future__ import annotations

import numpy as np

from mlexp.tasks.document_extraction.structure import Line, Word, union


class TesseractReader:
    """Reads a page into lines with word boxes, like RapidOcrReader."""

    def __init__(self, language: str = "eng", page_segmentation: int = 11) -> None:
        # psm 11, sparse text: forms and tables have no paragraphs for the default layout analysis to follow
        self.config = f"--psm {page_segmentation}"
        self.language = language

    def read(self, image: np.ndarray) -> list[Line]:
        import pytesseract

        data = pytesseract.image_to_data(
            image, lang=self.language, config=self.config, output_type=pytesseract.Output.DICT
        )
        lines: dict[tuple[int, int, int], list[Word]] = {}
        for i, text in enumerate(data["text"]):
            if not str(text).strip():
                continue
            box = [
                data["left"][i],
                data["top"][i],
                data["left"][i] + data["width"][i],
                data["top"][i] + data["height"][i],
            ]
            key = (data["block_num"][i], data["par_num"][i], data["line_num"][i])
            lines.setdefault(key, []).append(
                Word(str(text), [float(v) for v in box], max(float(data["conf"][i]), 0) / 100)
            )
        return [
            Line(
                " ".join(w.text for w in words), union([w.box for w in words]), min(w.confidence for w in words), words
            )
            for words in lines.values()
        ]
