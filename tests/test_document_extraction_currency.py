"""document_extraction: currency signs rescued from the recogniser's blank frames before a digit run."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from rapidocr.ch_ppocr_rec.utils import CTCLabelDecode

from mlexp.data import documents
from mlexp.data.documents import FAMILIES
from mlexp.errors import ConfigError
from mlexp.tasks.document_extraction.config import LocalOcrEngine
from mlexp.tasks.document_extraction.currency_decoding import CurrencyDecoder
from mlexp.tasks.document_extraction.ocr_local import CROP_MARGIN, RapidOcrReader, widen

# a tiny character set in RapidOCR's layout: CTCLabelDecode puts "blank" first and the space last
CHARACTERS = list("0123456789,.afnNR₹£$¥€")


def _decode(frames: list[dict[str, float]], threshold: float) -> str:
    """Greedy decoding of frames given as {character: probability}; the rest of each frame is blank."""
    ctc = CTCLabelDecode(character=list(CHARACTERS))
    preds = np.zeros((1, len(frames), len(ctc.character)), dtype=np.float32)
    for t, frame in enumerate(frames):
        for char, p in frame.items():
            preds[0, t, ctc.character.index(char)] = p
        preds[0, t, 0] = 1.0 - sum(frame.values())
    (text, _), *_ = CurrencyDecoder(ctc, threshold)(preds)[0]
    return str(text)


def test_a_sign_the_recogniser_lacks_is_named_with_the_signs_it_has():
    # what the stage says should the model's characters not be readable before it loads (config_rules.KNOWN_SIGNS)
    with pytest.raises(ValueError, match=r"^currency signs '¢' are not in .*, whose currency signs are ₹£\$¥€$"):
        CurrencyDecoder(CTCLabelDecode(character=list(CHARACTERS)), 0.1, "₹¢")


def test_a_sign_second_to_blank_is_read_before_a_digit_run_or_as_the_last_word_only():
    rupee_then_digits = [{"₹": 0.3}, {"1": 0.9}, {}, {"2": 0.9}]
    assert _decode(rupee_then_digits, 0.2) == "₹12"
    assert _decode(rupee_then_digits, 0.35) == "12"  # under the threshold
    assert _decode(rupee_then_digits, 0.0) == "12"  # off: plain greedy decoding
    # the most probable sign at its best frame; a space is kept where greedy decoding put it
    assert _decode([{"1": 0.9}, {" ": 0.9}, {"₹": 0.2, "£": 0.3}, {"2": 0.9}], 0.1) == "1 £2"
    # before letters, inside a number (after a digit and its separator) and after a sign already read: nothing
    assert _decode([{"₹": 0.5}, {"a": 0.9}], 0.1) == "a"
    assert _decode([{"1": 0.9}, {",": 0.9}, {"₹": 0.5}, {"2": 0.9}], 0.1) == "1,2"
    assert _decode([{"₹": 0.9}, {}, {"₹": 0.4}, {"1": 0.9}], 0.1) == "₹1"
    # a one-letter word right before the number whose frames hold the sign is the sign (£ read as "f");
    # a letter ending a longer word is not
    pound_as_f = [{"f": 0.6, "£": 0.35}, {" ": 0.9}, {"5": 0.9}]
    assert _decode(pound_as_f, 0.2) == "£ 5" and _decode(pound_as_f, 0.0) == "f 5"
    assert _decode([{"a": 0.9}, *pound_as_f], 0.2) == "af 5"
    # a sign standing last on the line as a word of its own ("amounts in ₹"), not glued to a word's end
    assert _decode([{"a": 0.9}, {"n": 0.9}, {" ": 0.9}, {}, {"₹": 0.35}], 0.2) == "an ₹"
    assert _decode([{"a": 0.9}, {"n": 0.9}, {"₹": 0.35}], 0.2) == "an"
    assert _decode([{"5": 0.9}, {" ": 0.9}, {"N": 0.9}], 0.2) == "5 N"  # a lone letter with no sign in it
    # a sign the model already prefers over blank is greedy decoding's own: unchanged either way
    assert _decode([{"$": 0.6}, {"5": 0.9}], 0.0) == _decode([{"$": 0.6}, {"5": 0.9}], 0.5) == "$5"


def _line(text: str, family: str) -> np.ndarray:
    font = ImageFont.truetype(str(FAMILIES[family][0]), 26)  # the generator's body text size (200 dpi)
    image = Image.new("RGB", (int(font.getlength(text)) + 80, 78), "white")
    ImageDraw.Draw(image).text((40, 26), text, font=font, fill=(20, 20, 20))
    return np.asarray(image)


@pytest.fixture(scope="module")
def readers() -> dict[str, RapidOcrReader]:
    default = LocalOcrEngine()
    assert default.currency_threshold > 0  # the rule is on by default
    return {
        "default": RapidOcrReader(1, 2000, 0.5, 32, default.currency_threshold, default.currency_signs),
        # greedy decoding on the detector's own boxes: the crop margin alone reads some of these signs
        "off": RapidOcrReader(1, 2000, 0.5, 32, currency_threshold=0.0, crop_margin=0),
        "tight": RapidOcrReader(1, 2000, 0.5, 32, default.currency_threshold, default.currency_signs, crop_margin=0),
    }


# typefaces in which greedy decoding drops ₹ at 200 dpi (the generator's clean pages)
LOST = [
    ("India Retail ₹13,000.72", "Noto Sans"),
    ("Net pay: ₹4,804.63", "DejaVu Serif"),
    ("Statement period 01/05/2020 to month end, amounts in ₹", "Noto Serif"),
]
PLAIN = [("Quantity 1,234.50 on 12/03/2020", "Noto Sans"), ("Balance 18,220.40", "DejaVu Serif")]


def test_a_rupee_greedy_decoding_drops_is_read_and_plain_numbers_get_no_sign(readers):
    for text, family in LOST:
        image = _line(text, family)
        assert [line.text for line in readers["off"].read(image)] == [text.replace("₹", "")]
        assert [line.text for line in readers["default"].read(image)] == [text]
    for text, family in PLAIN:
        assert [line.text for line in readers["default"].read(_line(text, family))] == [text]
    # threshold 0 leaves RapidOCR's own decoder in place
    assert type(readers["off"].engine.text_rec.postprocess_op) is CTCLabelDecode


def test_a_sign_outside_the_recognisers_characters_or_a_threshold_over_1_is_a_config_error():
    # the recogniser knows every Unicode currency sign (₿ too); the runic ᚠ ("fee") it does not: the stage refuses
    # it as the command does before the trial (config_rules.KNOWN_SIGNS), before the models load
    with pytest.raises(
        ConfigError, match="^engine.currency_signs=₹ᚠ, engine.currency_threshold=0.1: .* it does not read ᚠ"
    ):
        RapidOcrReader(1, 2000, 0.5, 32, currency_threshold=0.1, currency_signs="₹ᚠ")
    with pytest.raises(ConfigError, match=r"engine.currency_threshold=1.5 must be a probability in \[0, 1\]"):
        RapidOcrReader(1, 2000, 0.5, 32, currency_threshold=1.5)


def test_a_box_widens_rightwards_over_blank_page_only_and_stops_half_way_to_the_next_ink():
    grey = np.full((60, 300), 250.0)
    grey[20:40, 100:141] = 30  # the line the box holds
    grey[20:40, 151:170] = 30  # a neighbour 10 blank columns to the right (a narrow gutter)
    box = np.array([[100, 15], [140, 15], [140, 45], [100, 45]], dtype=np.float32)  # 30 px high
    assert widen(box, grey, 0.6)[:, 0].tolist() == [100, 145, 145, 100]  # half the 10 px; the left stays
    assert widen(box, grey, 0.1)[:, 0].tolist() == [100, 143, 143, 100]  # at most 0.1 × 30 px
    assert widen(box, grey, 0.0)[:, 0].tolist() == box[:, 0].tolist()
    grey[20:40, 151:170] = 250  # no neighbour: 18 px of blank page, and no further than the page's edge
    assert widen(box, grey, 0.6)[:, 0].tolist() == [100, 158, 158, 100]
    assert widen(box, grey[:, :150], 0.6)[:, 0].tolist() == [100, 149, 149, 100]
    grey[30, 141] = 30  # ink right at the box's edge: no room
    assert widen(box, grey, 0.6)[:, 0].tolist() == box[:, 0].tolist()


def test_the_header_amounts_in_rupee_is_read_when_its_crop_has_background_after_the_sign(readers):
    # development seed 20, statement 4 (Noto Sans): the detector's box ends a few px after the ₹ that ends the
    # header, and with no more page after it the recogniser reads nothing there (p(₹) under the threshold)
    page = documents.generate("account_statement", 20, 4, 10)
    assert page.family == "Noto Sans"
    header = "Statement period 01/02/2020 to month end, amounts in ₹"
    assert header in [line["text"] for line in page.lines]
    image = np.asarray(page.image)  # the whole page: the recogniser's reading depends on the crop's geometry
    assert CROP_MARGIN > 0  # on by default

    def header_of(reader: RapidOcrReader):
        (line,) = [line for line in reader.read(image) if "amounts in" in line.text]
        return line

    assert header_of(readers["tight"]).text.rstrip() == header[:-2]
    line = header_of(readers["default"])
    assert line.text == header
    assert line.words[-1].text == "₹" and line.words[-1].box[0] > 780  # the sign's own word box, at its place
