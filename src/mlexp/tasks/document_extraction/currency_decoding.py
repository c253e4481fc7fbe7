"""Currency signs the recogniser saw but greedy CTC decoding dropped: a sign in the blank frames before a digit run.

RapidOCR's recogniser (PP-OCRv6 small) outputs, for every time step (frame) of a text-line crop, a
probability for each of its 18 708 characters and for CTC's "blank"; greedy decoding keeps each
frame's most probable entry, collapses repeats and drops blanks. For some typefaces a currency sign
in front of an amount is the *second* choice after blank at its frames (₹ in DejaVu Serif and Noto
Sans at 200 dpi: p(₹) 0.07–0.4 while blank wins), so greedy decoding reads "₹1,234.00" as "1,234.00".

The rule here, applied per crop after the model and before CTC's collapse: a sign has two places,
before a digit run ("₹1,234") and as the line's last word ("amounts in ₹").

    before a digit run (a digit not preceded by a digit, or by a , or . after one), take the frames since
    the previous decoded character whose best entry is blank; at the line's end, the blank frames after the
    space that ends the last word; in both places also the previous word when it is one letter (£ read as
    "f"). If one of `signs` has probability >= threshold in one of those frames, that frame (or the letter)
    emits the sign (the most probable sign at its best frame).

Frames whose best entry is a space are passed over (their space stays), so "₹ 1,234" keeps its space.
A place that already has a sign is left alone, and only blank frames or a one-letter word change. It
knows nothing about fonts or documents; the threshold was chosen on development seeds
(docs/tasks/document_extraction.md). threshold 0 switches it off.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import numpy as np

DEFAULT_SIGNS = "₹£$¥€"


class CurrencyDecoder:
    """A drop-in for RapidOCR's CTCLabelDecode (its `postprocess_op`) that rescues currency signs first."""

    def __init__(self, ctc: Any, threshold: float, signs: str = DEFAULT_SIGNS) -> None:
        self.ctc, self.threshold = ctc, threshold
        self.character: list[str] = list(ctc.character)
        index = {c: i for i, c in enumerate(self.character)}
        missing = [s for s in signs if s not in index]
        if missing:
            known = "".join(c for c in self.character if len(c) == 1 and unicodedata.category(c) == "Sc")
            raise ValueError(
                f"currency signs {''.join(missing)!r} are not in the recogniser's character set, whose currency signs "
                f"are {known}"
            )
        self.signs = np.array([index[s] for s in signs], dtype=np.int64)
        self.digits = frozenset(index[d] for d in "0123456789" if d in index)
        self.sign_set = frozenset(self.signs.tolist())
        self.separators = frozenset(index[c] for c in ",." if c in index)
        self.space = index.get(" ", -1)

    def __call__(
        self, preds: np.ndarray, return_word_box: bool = False, **kwargs: Any
    ) -> tuple[list[tuple[str, float]], list[Any]]:
        """RapidOCR's greedy decoding of `preds` (batch × frames × classes), with the rescued signs."""
        text_index = preds.argmax(axis=2)
        text_prob = preds.max(axis=2)
        if self.threshold > 0:
            for row in range(len(preds)):
                self.rescue(preds[row], text_index[row], text_prob[row])
        return self.ctc.decode(  # type: ignore[no-any-return]
            text_index,
            text_prob,
            return_word_box,
            kwargs.get("wh_ratio_list", (1.0,)),
            kwargs.get("max_wh_ratio", 1.0),
            remove_duplicate=True,
        )

    def rescue(self, probs: np.ndarray, index: np.ndarray, prob: np.ndarray) -> list[int]:
        """Put a sign where one clears the threshold (in place); returns the frames changed."""
        # the decoded characters (CTC-collapsed, spaces included) as (class, frames, blank frames before it)
        tokens: list[tuple[int, list[int], list[int]]] = []
        blanks: list[int] = []
        for frame, cls in enumerate(index.tolist()):
            if cls == 0:
                blanks.append(frame)
            elif tokens and cls == tokens[-1][0] and not blanks:
                tokens[-1][1].append(frame)
            else:
                tokens.append((cls, [frame], blanks))
                blanks = []
        changed: list[int] = []
        in_number = False  # the last character (spaces end a number) is a digit, or a , or . after one
        last = -1  # the last token that is not a space
        for k, (cls, _, _) in enumerate(tokens):
            if cls == self.space:
                in_number = False
                continue
            if cls in self.digits and not in_number:
                # the blank frames since the last character, spaces passed over
                gap = [f for token in tokens[last + 1 : k + 1] for f in token[2]]
                changed += self._sign_at(probs, index, prob, tokens, last, gap)
            in_number = cls in self.digits or (in_number and cls in self.separators)
            last = k
        if tokens and not in_number:
            # a sign standing last on the line as a word of its own ("amounts in ₹"): the blank frames after the
            # space that ends the line's last word, or that word when it is one letter
            after = tokens[last + 1 :]
            trailing = [f for token in after[1:] for f in token[2]] + blanks if after else []
            changed += self._sign_at(probs, index, prob, tokens, last, trailing)
        return changed

    def _sign_at(
        self,
        probs: np.ndarray,
        index: np.ndarray,
        prob: np.ndarray,
        tokens: list[tuple[int, list[int], list[int]]],
        last: int,
        blank: list[int],
    ) -> list[int]:
        """A sign in the blank frames `blank` after token `last`, or token `last` itself when it is a lone letter."""
        if last >= 0 and tokens[last][0] in self.sign_set:
            return []  # already read
        letter: list[int] = []
        if last >= 0 and self.character[tokens[last][0]].isalpha() and (last == 0 or tokens[last - 1][0] == self.space):
            letter = tokens[last][1]  # a one-letter word: £ read as "f"
        frames = blank + letter
        if not frames:
            return []
        window = probs[frames][:, self.signs]
        best_frame, best_sign = np.unravel_index(int(window.argmax()), window.shape)
        p = float(window[best_frame, best_sign])
        if p < self.threshold:
            return []
        sign = int(self.signs[int(best_sign)])
        at = [frames[int(best_frame)]] if int(best_frame) < len(blank) else letter
        index[at] = sign
        prob[at] = p
        return at
