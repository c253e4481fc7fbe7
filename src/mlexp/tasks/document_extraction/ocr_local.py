"""Text lines and words read by RapidOCR (PP-OCRv6 small detection and recognition, ONNX Runtime), offline.

The models are the ONNX files inside the rapidocr wheel, named by path: RapidOCR would
otherwise look them up in its model registry and download what it does not find.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mlexp.errors import ConfigError
from mlexp.tasks.document_extraction.charset import REC_MODEL
from mlexp.tasks.document_extraction.config_rules import CURRENCY_SIGNS, KNOWN_SIGNS
from mlexp.tasks.document_extraction.currency_decoding import DEFAULT_SIGNS, CurrencyDecoder
from mlexp.tasks.document_extraction.structure import Line, Word, box_of

MODEL_FILES = {
    "det": "PP-OCRv6_det_small.onnx",
    "rec": REC_MODEL,
    "cls": "ch_ppocr_mobile_v2.0_cls_mobile.onnx",
}


def bundled_models() -> dict[str, Path]:
    """The ONNX models shipped in the rapidocr wheel; an error naming the missing file when one is absent."""
    import rapidocr

    folder = Path(rapidocr.__file__).parent / "models"
    paths = {name: folder / file for name, file in MODEL_FILES.items()}
    for path in paths.values():
        if not path.is_file():
            raise ConfigError(
                f"{path} is missing from the rapidocr wheel; reinstall rapidocr==3.10.0 from requirements.lock"
            )
    return paths


# background a text-line crop gets after its last glyph, in box heights, where the page is blank there.
# Chosen on development pages (seeds 42, 3-29; docs/tasks/document_extraction.md, "Crop margin"): the 13
# headers "amounts in ₹" in Noto Sans read 0/13 on the detector's boxes; with 0.4 / 0.6 / 1 box height of page
# on both sides 4 / 8 / 13 of them, and with 1 box height on the right only the 5 of them tried
CROP_MARGIN = 1.0


class _TrailingMargin:
    """RapidOCR's text detector with each box widened to the right over blank page, up to `margin` box heights.

    The detector's box can end 3–5 px after the line's last glyph (about 0.1 of the box height), and the
    recogniser, reading left to right, then has too little background after that glyph to emit it: the
    statements' header "amounts in ₹" in Noto Sans came out as "amounts in" (p(₹) 0.03–0.08), and with more
    page on the right as "amounts in ₹". The cause is the crop, not the font: this gives every crop that
    background where the page has it. The box grows only over pixel columns that are blank in its middle rows
    (no pixel darker than 0.6 × the background there), and only to half the distance to the next ink, so a
    neighbour's glyph (a cell one narrow gutter away) never enters the crop. Only the right side grows: on
    development pages growing the left side too turned ₹ at a value's start into ¥ (the model's reading of a
    sign with more page before it) and moved a value's box back onto its key's, so "Key:   value" pairs were
    lost (key-value F1 0.98 → 0.87). The detector's boxes are widened, so word boxes stay in the crop's frame
    (RapidOCR computes them from it); `RapidOcrReader.read` then ends each line box at its last word, so the
    boxes a page reports (and table structure matches cells by) stay tight to the text.
    """

    def __init__(self, detector: Any, margin: float) -> None:
        self.detector, self.margin = detector, margin

    def __getattr__(self, name: str) -> Any:
        return getattr(self.detector, name)

    def __call__(self, img: np.ndarray) -> Any:
        result = self.detector(img)
        if result.boxes is not None and len(result.boxes):
            grey = img.mean(axis=2) if img.ndim == 3 else img.astype(np.float64)
            result.boxes = np.array([widen(box, grey, self.margin) for box in result.boxes], dtype=np.float32)
        return result


def widen(box: np.ndarray, grey: np.ndarray, margin: float) -> np.ndarray:
    """`box` (corners top-left, top-right, bottom-right, bottom-left) widened rightwards over blank columns."""
    box = np.array(box, dtype=np.float32)
    x0, x1 = float(box[:, 0].min()), float(box[:, 0].max())
    y0, y1 = float(box[:, 1].min()), float(box[:, 1].max())
    height = y1 - y0
    reach = int(round(margin * height))
    if height < 4 or x1 - x0 < 2 or reach <= 0:
        return box
    # the middle rows only: a neighbouring line's ascenders or descenders must not stop the box
    top, bottom = int(round(y0 + 0.2 * height)), int(round(y1 - 0.2 * height)) + 1
    rows = grey[max(top, 0) : min(bottom, grey.shape[0])]
    if not rows.size:
        return box
    # the background: the bright end of the box's rows and of the page around it
    around = rows[:, max(int(x0) - 2 * reach, 0) : min(int(np.ceil(x1)) + 2 * reach + 1, grey.shape[1])]
    ink = (rows < 0.6 * float(np.percentile(around, 90))).any(axis=0)  # per pixel column of the page
    start, room = int(np.ceil(x1)) + 1, reach
    for k in range(2 * reach + 1):  # all blank columns to the page's edge, half of those to the next ink
        if start + k >= len(ink):
            room = min(k, reach)
            break
        if ink[start + k]:
            room = min(k // 2, reach)
            break
    box[[1, 2], 0] += room
    return box


class RapidOcrReader:
    """Reads a page image into lines with per-word boxes."""

    def __init__(
        self,
        threads: int,
        det_limit_side: int,
        text_score: float,
        rec_batch: int,
        currency_threshold: float = 0.0,
        currency_signs: str = DEFAULT_SIGNS,
        crop_margin: float = CROP_MARGIN,
    ) -> None:
        from rapidocr import RapidOCR

        if not 0 <= currency_threshold <= 1:
            raise ConfigError(f"engine.currency_threshold={currency_threshold} must be a probability in [0, 1]")
        if (error := CURRENCY_SIGNS.refusal((currency_threshold, currency_signs))) is not None:
            raise error
        # the command refused it before the trial opened; the stage's own check, before the models load
        if (error := KNOWN_SIGNS.refusal((currency_signs, currency_threshold))) is not None:
            raise error
        models = bundled_models()
        self.engine = RapidOCR(
            params={
                "Global.log_level": "warning",
                "Global.use_cls": False,  # pages are upright; the angle classifier only costs time
                "Global.return_word_box": True,
                "Global.text_score": text_score,
                "Det.model_path": str(models["det"]),
                "Rec.model_path": str(models["rec"]),
                "Cls.model_path": str(models["cls"]),
                "Det.limit_type": "max",
                "Det.limit_side_len": det_limit_side,
                "Rec.rec_batch_num": rec_batch,
                "EngineConfig.onnxruntime.intra_op_num_threads": threads,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            }
        )
        if currency_threshold > 0:
            # the recogniser's greedy CTC decoding, with currency signs rescued from the blank frames before
            # a digit run (currency_decoding.py); RapidOCR loads its recogniser lazily, so it is loaded here
            recogniser = self.engine._load_rec_model()
            try:
                recogniser.postprocess_op = CurrencyDecoder(
                    recogniser.postprocess_op, currency_threshold, currency_signs
                )
            except ValueError as error:
                raise ConfigError(f"engine.currency_signs: {error}") from None
        if crop_margin > 0:
            # the recogniser reads the crops of the detector's boxes: widen each box over blank page first
            detector = self.engine._load_det_model()
            self.engine.text_det = _TrailingMargin(detector, crop_margin)  # type: ignore[assignment]

    def read(self, image: np.ndarray) -> list[Line]:
        result: Any = self.engine(image)
        if result.boxes is None:
            return []
        words_of = result.word_results or [()] * len(result.txts)
        lines = []
        for points, text, score, words in zip(result.boxes, result.txts, result.scores, words_of):
            parsed = [Word(str(w[0]), box_of(w[2]), float(w[1])) for w in words if str(w[0]).strip()]
            box = box_of(points)
            if parsed:  # the crop's margin is blank page: the line ends where its last word does
                box[2] = min(box[2], max(w.box[2] for w in parsed))
            lines.append(Line(str(text), box, float(score), _merge_characters(parsed)))
        return lines


def _merge_characters(words: list[Word]) -> list[Word]:
    """RapidOCR gives single characters for some lines: glue those touching into words (a gap > ⅓ height splits)."""
    if not words or any(len(w.text) > 1 for w in words):
        return words
    merged = [Word(words[0].text, list(words[0].box), words[0].confidence)]
    for w in words[1:]:
        last = merged[-1]
        if w.box[0] - last.box[2] <= (last.box[3] - last.box[1]) / 3:
            last.text += w.text
            last.box = [last.box[0], min(last.box[1], w.box[1]), w.box[2], max(last.box[3], w.box[3])]
            last.confidence = min(last.confidence, w.confidence)
        else:
            merged.append(Word(w.text, list(w.box), w.confidence))
    return merged
