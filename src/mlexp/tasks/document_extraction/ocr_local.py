"""Text lines and words read by RapidOCR (PP-OCRv6 small detection and recognition, ONNX Runtime), offline.

The models are the ONNX files inside the rapidocr wheel, named by path: RapidOCR would
otherwise look them up in its model registry and download what it does not find.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mlexp.errors import ConfigError
from mlexp.tasks.document_extraction.currency_decoding import DEFAULT_SIGNS, CurrencyDecoder
from mlexp.tasks.document_extraction.structure import Line, Word, box_of

MODEL_FILES = {
    "det": "PP-OCRv6_det_small.onnx",
    "rec": "PP-OCRv6_rec_small.onnx",
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
    ) -> None:
        from rapidocr import RapidOCR

        if not 0 <= currency_threshold <= 1:
            raise ConfigError(f"engine.currency_threshold={currency_threshold} must be a probability in [0, 1]")
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

    def read(self, image: np.ndarray) -> list[Line]:
        result: Any = self.engine(image)
        if result.boxes is None:
            return []
        words_of = result.word_results or [()] * len(result.txts)
        lines = []
        for points, text, score, words in zip(result.boxes, result.txts, result.scores, words_of):
            parsed = [Word(str(w[0]), box_of(w[2]), float(w[1])) for w in words if str(w[0]).strip()]
            lines.append(Line(str(text), box_of(points), float(score), _merge_characters(parsed)))
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
