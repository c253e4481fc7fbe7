"""Unicode normalisation of extracted text: NFKC where it restores the symbol, never where it changes the content.

OCR models trained on Chinese text often read ¥ as the full-width ￥ (U+FFE5) and digits or
punctuation as their full-width forms; NFKC maps those back. Applied to a whole string NFKC
would also turn ² into 2, ½ into 1⁄2 and ™ into TM, which changes what a document says, so
`mode: compatibility_forms` applies it only to the full-width and half-width forms block
(U+FF00–U+FFEF) and to the degree-sign ligatures ℃ ℉.
"""

from __future__ import annotations

import re
import unicodedata

MODES = ("none", "compatibility_forms", "nfkc")
_FORMS = re.compile("[\uff00-\uffef\u2103\u2109]")
_SPACES = re.compile(r"\s+")


def normalise(text: str, mode: str) -> str:
    """`text` in `mode`: none, compatibility_forms (the default) or nfkc (everything)."""
    if mode == "nfkc":
        text = unicodedata.normalize("NFKC", text)
    elif mode == "compatibility_forms":
        text = _FORMS.sub(lambda m: unicodedata.normalize("NFKC", m.group()), text)
    return _SPACES.sub(" ", text).strip()
