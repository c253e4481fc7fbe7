"""A currency sign the recogniser cannot read is one line before the trial opens: its characters are read from the
ONNX file's metadata, without loading the model or importing RapidOCR."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO, one_line_error
from mlexp.config.constraints import check_constraints
from mlexp.errors import ConfigError
from mlexp.tasks.document_extraction import charset, config_rules

SIGNS_READ = "$¢£¤¥₠₡₢₣₤₥₦₧₨₩₪₫€₭₮₯₰₱₲₳₴₵₶₷₸₹₺₻₼₽₾₿￥"


def test_the_characters_are_those_rapidocr_reads_from_the_model():
    import onnxruntime

    from mlexp.tasks.document_extraction.ocr_local import bundled_models

    session = onnxruntime.InferenceSession(str(bundled_models()["rec"]), providers=["CPUExecutionProvider"])
    dictionary = session.get_modelmeta().custom_metadata_map["character"].splitlines()
    assert charset.recogniser_characters() == frozenset([*dictionary, " "])
    assert len(dictionary) == 18_708  # currency_decoding's docstring


def test_an_unreadable_model_leaves_the_check_to_the_stage(tmp_path):
    assert charset.recogniser_characters(tmp_path) is None  # no model there
    (tmp_path / charset.REC_MODEL).write_bytes(b"\x0f\xff")  # not a protobuf
    assert charset.recogniser_characters.__wrapped__(tmp_path) is None


def test_a_sign_it_does_not_read_is_refused_before_the_trial_opens(tmp_project):
    # it was `stage 'extract' failed: engine.currency_signs: currency signs '🙂' are not in the recogniser's character
    # set` (exit 1), after prepare drew the pages
    line = one_line_error(
        tmp_project,
        "task=document_extraction",
        "dataset.n_per_type=1",
        "dataset.n_rows=4",
        'engine.currency_signs="₹🙂"',
    )
    assert line == (
        "engine.currency_signs=₹🙂, engine.currency_threshold=0.1: each of engine.currency_signs must be a character "
        "the recogniser (PP-OCRv6 small) reads, for engine.currency_threshold above 0 to find it where greedy "
        f"decoding dropped it; it does not read 🙂: remove it (the currency signs it reads: {SIGNS_READ}), or set "
        "engine.currency_threshold=0"
    )


def test_with_the_rule_off_the_signs_are_not_read_and_two_unread_signs_are_named_once_each():
    assert config_rules.KNOWN_SIGNS.refusal(("🙂", 0.0)) is None
    refused = config_rules.KNOWN_SIGNS.refusal(("🙂ᚠ🙂₹", 0.2))
    assert isinstance(refused, ConfigError) and "; it does not read 🙂ᚠ: remove them (" in str(refused)


def test_the_check_loads_neither_rapidocr_nor_onnx_runtime():
    script = f"""
import sys
from hydra import compose, initialize_config_dir
from mlexp import tasks
from mlexp.config import make_composable
from mlexp.config.constraints import check_constraints
make_composable()
with initialize_config_dir(config_dir={str(REPO / "conf")!r}, version_base="1.3"):
    cfg = compose("config", overrides=["task=document_extraction"])
check_constraints(cfg, tasks.get("document_extraction").constraints)
print(sorted(name for name in ("rapidocr", "onnxruntime", "cv2") if name in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO)
    assert done.stdout.strip() == "[]", done.stderr


@pytest.mark.parametrize("signs", ["₹£$¥€", "₿"])
def test_the_signs_it_reads_pass(signs):
    from hydra import compose, initialize_config_dir

    from mlexp import tasks
    from mlexp.config import make_composable

    make_composable()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["task=document_extraction", f"engine.currency_signs='{signs}'"])
    check_constraints(cfg, tasks.get("document_extraction").constraints)
