"""document_extraction without OCR: Textract through botocore's Stubber, metrics, normalisation, layout, input."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf

from mlexp.data import document_files, documents
from mlexp.data.document_scan import degrade
from mlexp.errors import ConfigError, DataError
from mlexp.tasks.document_extraction import layout, metrics, textract
from mlexp.tasks.document_extraction.config import DocumentLayout, TextractEngine
from mlexp.tasks.document_extraction.engines import TextractExtractor
from mlexp.tasks.document_extraction.normalise import normalise
from mlexp.tasks.document_extraction.page_layout import drop_empty_columns
from mlexp.tasks.document_extraction.stages import document_counts
from mlexp.tasks.document_extraction.structure import Line, Page, Table, Word, page_from_json

REPO = Path(__file__).resolve().parents[1]

WIDTH, HEIGHT = 1000, 500


def _geometry(left, top, width, height):
    return {
        "BoundingBox": {"Width": width, "Height": height, "Left": left, "Top": top},
        "Polygon": [
            {"X": left, "Y": top},
            {"X": left + width, "Y": top},
            {"X": left + width, "Y": top + height},
            {"X": left, "Y": top + height},
        ],
    }


def _block(kind, id_, left=0.1, top=0.1, width=0.1, height=0.04, children=(), **extra):
    block = {"BlockType": kind, "Id": id_, "Confidence": 99.0, "Geometry": _geometry(left, top, width, height), **extra}
    if children:
        block["Relationships"] = [{"Type": "CHILD", "Ids": list(children)}]
    return block


def _response():
    """An AnalyzeDocument response in Textract's documented shape: a 1×3 table with a 2-column merged cell,
    one key-value (KEY → VALUE), one selection element, lines and words."""
    words = {
        f"w{i}": text
        for i, text in enumerate(["Net", "pay:", "₹1,250.00", "Date", "Amount", "Total", "Paid", "Single", "￥500"])
    }
    blocks = [_block("PAGE", "page", 0, 0, 1, 1, children=["l1", "l2", "l3", "l4"])]
    for i, (id_, text) in enumerate(words.items()):
        blocks.append(_block("WORD", id_, left=0.1 * i, Text=text, TextType="PRINTED"))
    blocks += [
        _block("LINE", "l1", children=["w0", "w1", "w2"], Text="Net pay: ₹1,250.00"),
        _block("LINE", "l2", top=0.5, children=["w3", "w4"], Text="Date Amount"),
        _block(
            "KEY_VALUE_SET",
            "k1",
            EntityTypes=["KEY"],
            Relationships=[{"Type": "VALUE", "Ids": ["v1"]}, {"Type": "CHILD", "Ids": ["w0", "w1"]}],
        ),
        _block("KEY_VALUE_SET", "v1", left=0.3, children=["w2"], EntityTypes=["VALUE"]),
        _block("SELECTION_ELEMENT", "s1", left=0.05, top=0.8, width=0.02, height=0.04, SelectionStatus="SELECTED"),
        # Textract's check box pattern (FORMS): KEY "Single" → VALUE → SELECTION_ELEMENT, the label as the key
        _block("LINE", "l3", top=0.9, children=["w7"], Text="Single"),
        _block("LINE", "l4", top=0.3, children=["w8"], Text="￥500"),
        _block("SELECTION_ELEMENT", "s2", left=0.5, top=0.9, width=0.02, height=0.04, SelectionStatus="NOT_SELECTED"),
        _block(
            "KEY_VALUE_SET",
            "k2",
            top=0.9,
            EntityTypes=["KEY"],
            Relationships=[{"Type": "VALUE", "Ids": ["v2"]}, {"Type": "CHILD", "Ids": ["w7"]}],
        ),
        _block("KEY_VALUE_SET", "v2", left=0.5, top=0.9, children=["s2"], EntityTypes=["VALUE"]),
        _block(
            "TABLE",
            "t1",
            top=0.5,
            width=0.8,
            height=0.2,
            Relationships=[
                {"Type": "CHILD", "Ids": ["c1", "c2", "c3", "c4", "c5", "c6"]},
                {"Type": "MERGED_CELL", "Ids": ["m1"]},
            ],
        ),
        # an empty third column (a ruling Textract took for a column): dropped by the shared post-processing
        _block("CELL", "c5", RowIndex=1, ColumnIndex=3, RowSpan=1, ColumnSpan=1),
        _block("CELL", "c6", RowIndex=2, ColumnIndex=3, RowSpan=1, ColumnSpan=1),
        _block("CELL", "c1", RowIndex=1, ColumnIndex=1, RowSpan=1, ColumnSpan=1, children=["w3"]),
        _block("CELL", "c2", RowIndex=1, ColumnIndex=2, RowSpan=1, ColumnSpan=1, children=["w4"]),
        _block("CELL", "c3", RowIndex=2, ColumnIndex=1, RowSpan=1, ColumnSpan=1, children=["w5"]),
        _block("CELL", "c4", RowIndex=2, ColumnIndex=2, RowSpan=1, ColumnSpan=1, children=["w6"]),
        _block("MERGED_CELL", "m1", RowIndex=2, ColumnIndex=1, RowSpan=1, ColumnSpan=2, children=["c3", "c4"]),
    ]
    return {"DocumentMetadata": {"Pages": 1}, "Blocks": blocks, "AnalyzeDocumentModelVersion": "1.0"}


def test_textract_request_and_blocks_parse_into_the_document_structure():
    import boto3
    from botocore.stub import Stubber

    image = np.full((HEIGHT, WIDTH, 3), 255, dtype=np.uint8)
    client = boto3.client("textract", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    post = OmegaConf.structured(DocumentLayout)
    engine = OmegaConf.structured(TextractEngine)
    with Stubber(client) as stub:
        stub.add_response(
            "analyze_document",
            _response(),
            {"Document": {"Bytes": textract.page_bytes(image, engine.max_bytes)}, "FeatureTypes": ["TABLES", "FORMS"]},
        )
        page = TextractExtractor(engine, post, client).extract(image, 1, "page.png page 1")
        stub.assert_no_pending_responses()
    # the full-width yen is restored by the shared normalisation
    assert [line.text for line in page.lines] == ["Net pay: ₹1,250.00", "Date Amount", "Single", "¥500"]
    assert page.lines[0].words[2].box == pytest.approx([200, 50, 300, 70])
    [pair] = page.key_values  # the check box's KEY is not a key-value pair
    assert (pair.key, pair.value) == ("Net pay", "₹1,250.00")
    [table] = page.tables
    assert (table.rows, table.columns) == (2, 2) and table.grid() == [["Date", "Amount"], ["Total Paid", ""]]
    assert table.cells[2].column_span == 2
    box, single = page.selection_elements
    assert box.state == "SELECTED" and box.box == pytest.approx([50, 400, 70, 420])
    assert (single.state, single.label) == ("NOT_SELECTED", "Single")


def _client():
    import boto3

    return boto3.client("textract", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("UnrecognizedClientException", ConfigError),
        ("InvalidSignatureException", ConfigError),
        ("ExpiredTokenException", ConfigError),
        ("AccessDeniedException", ConfigError),
        ("UnsupportedDocumentException", DataError),  # this page only: the batch goes on
    ],
)
def test_textract_account_refusals_fail_the_trial_and_page_refusals_skip_the_page(code, error):
    from botocore.stub import Stubber

    client = _client()
    image = np.full((40, 40, 3), 255, dtype=np.uint8)
    with Stubber(client) as stub:
        stub.add_client_error(
            "analyze_document", service_error_code=code, service_message="refused", http_status_code=400
        )
        with pytest.raises(error) as raised:
            textract.analyze(client, image, 10_000_000, "a.png page 1")
    assert type(raised.value) is error
    assert (code in str(raised.value)) == (error is ConfigError)


def test_textract_unreachable_fails_the_trial():
    import boto3
    from botocore.config import Config

    # port 9 (discard) on loopback: nothing listens, the connection is refused at once
    client = boto3.client(
        "textract",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="x",
        aws_secret_access_key="y",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=2),
    )
    with pytest.raises(ConfigError, match="engine=textract cannot reach http://127.0.0.1:9"):
        textract.analyze(client, np.full((40, 40, 3), 255, dtype=np.uint8), 10_000_000, "a.png")


def test_a_failed_document_with_ground_truth_counts_as_misses():
    page = documents.generate("pay_stub", 1, 0, 4)
    truth = page_from_json({"lines": page.lines, "selection_elements": page.selection_elements})
    counts = metrics.ratios(dict(document_counts([truth], [])))
    assert counts["check_box_recall"] == 0.0 and counts["cer"] == 1.0


def test_textract_without_credentials_is_one_line(monkeypatch, tmp_path):
    import boto3

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    client = boto3.client("textract", region_name="us-east-1")
    extractor = TextractExtractor(OmegaConf.structured(TextractEngine), OmegaConf.structured(DocumentLayout), client)
    no_credentials = r"engine=textract: no AWS credentials found; run `aws configure`.*, or use engine=local_ocr$"
    with pytest.raises(ConfigError, match=no_credentials):
        extractor.extract(np.full((50, 50, 3), 255, dtype=np.uint8), 1, "x.png")


def test_a_rupee_read_as_r_is_a_miss_and_full_width_yen_is_restored():
    truth = Page(1, 100, 100, [Line("Net ₹ 1,250 and 12°", [0, 0, 90, 10])])
    wrong = Page(1, 100, 100, [Line("Net R 1,250 and 12°", [0, 0, 90, 10])])
    counts = metrics.compare(truth, wrong)
    found = metrics.ratios(counts)
    assert found["symbol_recall_rupee"] == 0.0 and found["symbol_recall_degree"] == 1.0
    assert found["cer"] == pytest.approx(1 / len("Net ₹ 1,250 and 12°"))
    assert normalise("￥1,200 ²", "compatibility_forms") == "¥1,200 ²"
    assert normalise("￥1,200 ²", "nfkc") == "¥1,200 2" and normalise("￥1", "none") == "￥1"


def _word(text, x0, y0, width=60, height=20):
    return Word(text, [x0, y0, x0 + width, y0 + height])


def test_whitespace_tables_count_columns_and_merge_stray_text():
    rows = [
        ["Date", "Description words", "Amount"],
        ["01/02", "Buy ACME", "12.00"],
        ["01/03", "Fee", "1.00"],
        ["01/04", "Sell Globex", "3.00"],
    ]
    words = []
    for r, row in enumerate(rows):
        for x, cell in zip((0, 200, 600), row):
            for k, token in enumerate(cell.split()):
                words.append(_word(token, x + 66 * k, 40 * r))  # 6 px between words
    words.append(_word(".", 420, 80, width=4))  # a speck read as text in one row, under no header
    [table] = layout.find_tables(words, 20, 0.45, 3, 3, drop_sparse_columns=True, min_column_fill=0.3)
    assert table.columns == 3 and table.rows == 4 and table.grid()[0] == ["Date", "Description words", "Amount"]
    [kept] = layout.find_tables(words, 20, 0.45, 3, 3, drop_sparse_columns=False, min_column_fill=0.3)
    assert kept.columns == 4
    spurious = page_from_json(
        {
            "tables": [
                {"cells": [{"row": r, "column": c, "text": "" if c == 1 else "x"} for r in range(2) for c in range(3)]}
            ]
        }
    ).tables[0]
    assert drop_empty_columns(spurious).columns == 2 and isinstance(spurious, Table)


def test_generated_pages_are_deterministic_and_degradations_move_the_truth():
    a, b = documents.generate("annual_report", 3, 0, 5), documents.generate("annual_report", 3, 0, 5)
    assert a.image.tobytes() == b.image.tobytes() and a.tables == b.tables
    text = " ".join(line["text"] for line in a.lines)
    assert all(symbol in text for symbol in ("₹", "£", "$", "¥", "元", "°"))
    box = list(a.selection_elements[0]["box"]) if a.selection_elements else list(a.lines[0]["box"])
    low = degrade(a, {"dpi": 100, "noise_sigma": 12, "jpeg_quality": 40}, np.random.default_rng(0))
    assert low.image.size == (850, round(b.image.size[1] / 2))
    assert low.lines[0]["box"] == [round(v / 2) for v in box]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("a.docx", b"PK", "unsupported file type .docx"),
        ("a.png", b"\x89PNG\r\n\x1a\n\x00\x00", "unreadable or truncated"),
    ],
)
def test_bad_files_are_refused_naming_the_file(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(document_files.BadDocument, match=f"{path}: {message}"):
        list(document_files.pages(path, 10_000_000, 200, 2.0))


def test_slanet_plus_runs_offline_from_its_wheel_and_spurious_columns_are_dropped():
    from mlexp.tasks.document_extraction.structure import Line
    from mlexp.tasks.document_extraction.table_model import SlanetTables, parse_html

    page = documents.generate("account_statement", 5, 0, 4)
    truth = page_from_json({"tables": page.tables}).tables[0]
    lines = [Line(x["text"], x["box"]) for x in page.lines]
    table = SlanetTables().restructure(np.asarray(page.image), truth, lines)
    assert table.columns >= 6 and table.rows == 5
    header = [c["text"] for c in page.tables[0]["cells"] if c["row"] == 0]
    assert "Ref" in header  # this statement has a header-only column, 1-3 characters from the next one
    dropped = drop_empty_columns(table).grid()
    # no empty column is left, and the header's text is all kept (SLANet may join "Ref" with its close neighbour)
    assert all(any(row[c] for row in dropped) for c in range(len(dropped[0])))
    assert " ".join(dropped[0]).split() == " ".join(header).split()
    spanned = parse_html(
        '<table><tr><td colspan="2">Total</td><td>3</td></tr><tr><td>a</td><td></td><td>b</td></tr></table>',
        [0, 0, 1, 1],
    )
    assert (spanned.rows, spanned.columns) == (2, 3) and spanned.grid() == [["Total", "", "3"], ["a", "", "b"]]


def _scan(path, seed):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(path)


def _user_cfg(folder, tmp_path):
    from mlexp.tasks.document_extraction.config import DocumentPages

    pages, truth = tmp_path / "out" / "pages", tmp_path / "out" / "truth"
    pages.mkdir(parents=True, exist_ok=True)
    truth.mkdir(exist_ok=True)
    cfg = OmegaConf.create(
        {"dataset": {"path": str(folder), "ground_truth": None}, "preprocessing": OmegaConf.structured(DocumentPages)}
    )
    return cfg, pages, truth


def test_user_files_keep_distinct_names_and_a_remaining_clash_is_refused(tmp_path):
    from mlexp.tasks.document_extraction.user_documents import write_pages

    folder = tmp_path / "scans"
    for seed, name in enumerate(["a.png", "a.tiff", "sub/x.png", "sub_x.png", "sub%2Fx.png"]):
        _scan(folder / name, seed)
    entries, rejected = write_pages(*_user_cfg(folder, tmp_path))
    names = {e["name"] for e in entries}
    assert len(names) == 5 and not rejected
    assert {"a.png", "a.tiff", "sub%2Fx.png", "sub_x.png", "sub%252Fx.png"} == names
    assert len(list((tmp_path / "out" / "pages").iterdir())) == 5
    _scan(folder / "A.PNG", 9)  # one file with a.png on a case-insensitive disk
    with pytest.raises(DataError, match="would both be saved as"):
        write_pages(*_user_cfg(folder, tmp_path))


def test_ground_truth_missing_a_key_is_rejected_naming_the_file_and_key(tmp_path, capsys):
    import json

    from mlexp.tasks.document_extraction.user_documents import write_pages

    folder = tmp_path / "scans"
    _scan(folder / "good.png", 1)
    _scan(folder / "bad.png", 2)
    (folder / "good.json").write_text(json.dumps({"pages": [{"lines": [{"text": "a", "box": [0, 0, 1, 1]}]}]}))
    (folder / "bad.json").write_text(json.dumps({"pages": [{"lines": [{"text": "a"}]}]}))
    entries, rejected = write_pages(*_user_cfg(folder, tmp_path))
    assert [e["name"] for e in entries] == ["good.png"] and entries[0]["ground_truth"] == "good.png.json"
    [problem] = rejected
    assert problem["error"] == (
        f"{folder / 'bad.json'} page 1: ground truth misses key 'box'; "
        "see 'Output schema' in docs/tasks/document_extraction.md"
    )
    assert problem["error"] in capsys.readouterr().err
    # the rejected document left no page behind (it did: pages/bad.png_p1.png, beside good.png_p1.png)
    assert sorted(path.name for path in (tmp_path / "out" / "pages").iterdir()) == ["good.png_p1.png"]


def test_every_pdf_page_is_rasterised_at_pdf_dpi_with_its_own_ink(tmp_path):
    from PIL import Image, ImageDraw

    letter = []  # US letter at 72 points per inch: 612 × 792
    for corner in ((36, 36), (500, 700)):  # a black square near a different corner of each page
        page = Image.new("RGB", (612, 792), "white")
        ImageDraw.Draw(page).rectangle([corner, (corner[0] + 72, corner[1] + 72)], fill="black")
        letter.append(page)
    pdf = tmp_path / "two.pdf"
    letter[0].save(pdf, save_all=True, append_images=letter[1:], resolution=72.0)
    first, second = document_files.pages(pdf, 60_000_000, 144, 2.0)  # not the default 200
    assert first.shape == second.shape == (1584, 1224, 3)  # 11 × 8.5 inches at 144 dpi
    scale = 144 / 72
    for image, (x, y) in ((first, (36, 36)), (second, (500, 700))):
        inside = image[round((y + 36) * scale), round((x + 36) * scale)]
        elsewhere = image[round(396 * scale), round(306 * scale)]
        assert inside.max() < 60 and elsewhere.min() > 200


def test_every_tiff_frame_is_held_to_max_pixels_and_an_empty_pdf_is_refused(tmp_path):
    from PIL import Image

    tiff = tmp_path / "two.tiff"
    small = Image.effect_noise((100, 100), 60).convert("RGB")
    small.save(tiff, save_all=True, append_images=[Image.effect_noise((400, 400), 60).convert("RGB")])
    with pytest.raises(document_files.BadDocument, match=f"{tiff} page 2: image of 400×400 pixels is over"):
        list(document_files.pages(tiff, 50_000, 200, 2.0))
    pdf = tmp_path / "empty.pdf"
    # a page tree that counts one page and holds none: pdfium opens it, and has no page to give
    body = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 1 >>"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, obj in enumerate(body, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 3\n0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size 3 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref
    pdf.write_bytes(bytes(out))
    with pytest.raises(document_files.BadDocument, match=f"{pdf} page 1: PDF has no such page"):
        list(document_files.pages(pdf, 10_000_000, 200, 2.0))


def test_a_100_dpi_page_is_upscaled_for_ocr_and_its_boxes_scaled_back():
    from mlexp.tasks.document_extraction.config import LocalOcrEngine
    from mlexp.tasks.document_extraction.engines import make

    page = degrade(documents.generate("pay_stub", 11, 0, 4), {"dpi": 100, "noise_sigma": 12}, np.random.default_rng(0))
    truth = page_from_json({"lines": page.lines, "selection_elements": page.selection_elements})
    extractor = make(OmegaConf.structured(LocalOcrEngine), OmegaConf.structured(DocumentLayout))
    found = extractor.extract(np.asarray(page.image), 1, "pay_stub at 100 dpi")
    assert (found.width, found.height) == page.image.size
    values = metrics.ratios(metrics.compare(truth, found))
    # boxes found on the upscaled page and not scaled back would miss every true box (recall 0); here 7 of the
    # 8 boxes (14 px with a tick at 100 dpi) are found, all in the right state
    assert values["check_box_recall"] >= 0.85 and values["check_box_state_accuracy"] >= 0.85 and values["cer"] < 0.02


def test_when_every_document_fails_extraction_fails_naming_the_first_error(tmp_path, monkeypatch):
    """Textract (a stand-in speaking its wire protocol on loopback) refuses every page: the stage raises, so the
    CLI marks the trial FAILED (as test_one_bad_file_fails_the_trial_with_one_line shows for any DataError)."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from mlexp.tasks.document_extraction.stages import extract

    class Refuse(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers["Content-Length"]))
            body = b'{"__type": "UnsupportedDocumentException", "Message": "Request has unsupported document format"}'
            self.send_response(400)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    pages = tmp_path / "data" / "pages"
    pages.mkdir(parents=True)
    entries = []
    for seed, name in enumerate(["a", "b"]):
        _scan(pages / f"{name}.png", seed)
        entries.append({"name": name, "source": f"{name}.png", "pages": [f"{name}.png"], "ground_truth": None})
    (pages / "manifest.json").write_text(json.dumps({"documents": entries, "rejected": []}))
    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    for name, value in {
        "AWS_ENDPOINT_URL_TEXTRACT": f"http://127.0.0.1:{server.server_port}",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "y",
        "AWS_MAX_ATTEMPTS": "1",
    }.items():
        monkeypatch.setenv(name, value)
    cfg = OmegaConf.create(
        {
            "paths": {"data": str(tmp_path / "data")},
            "engine": OmegaConf.structured(TextractEngine),
            "model": OmegaConf.structured(DocumentLayout),
        }
    )
    try:
        with pytest.raises(DataError, match=r"no page could be extracted \(2 documents failed\); first: a.png page 1"):
            extract(cfg, tracker=None)  # it fails before it logs anything
    finally:
        server.shutdown()


def test_large_check_boxes_with_thin_lines_are_found_in_every_mark_style():
    from mlexp.tasks.document_extraction import checkboxes

    # seed 42's bank statement 4 has 37 px boxes drawn with 3 px lines (a ring of 10 % of the side missed them)
    page = documents.generate("bank_statement", 42, 4, 6)
    assert (page.box_size, page.mark) == (37, "x")
    found = checkboxes.find(np.asarray(page.image), 24.0, 0.12)
    truth = sorted((e["box"][0], e["state"]) for e in page.selection_elements)
    assert sorted((round(e.box[0]), e.state) for e in found) == truth


def _cell_words(page):
    """The generated page's text as words at their drawn boxes (one word per drawn line part: no OCR)."""
    height = float(np.median([x["box"][3] - x["box"][1] for x in page.lines]))
    return [Word(x["text"], x["box"]) for x in page.lines], height


def test_a_wrapped_description_stays_in_its_row_and_the_table_keeps_every_row():
    page = documents.generate("account_statement", 2, 0, 5)  # its descriptions wrap onto a second line
    truth = page_from_json({"tables": page.tables}).tables[0]
    wrapped = [c for c in page.tables[0]["cells"] if c["column"] == 1 and c["box"][3] - c["box"][1] > 40]
    assert wrapped  # the wrapped cell's two lines are drawn 34 px apart, the rows 52 px
    words, height = _cell_words(page)
    [table] = layout.find_tables(words, height, 0.45, 3, 3, drop_sparse_columns=True, min_column_fill=0.15)
    assert (table.rows, table.columns) == (truth.rows, truth.columns) == (6, 7)
    # the continuation is read after its first line: "Initech Bond" then "2027", not by x
    assert table.grid() == truth.grid()


def _ocr_like_lines(page):
    """The drawn text as OCR lines: each word's box its share of the line's width (what a reader returns)."""
    lines = []
    for x in page.lines:
        x0, y0, x1, y1 = x["box"]
        tokens, words, at = x["text"].split(), [], 0
        for token in tokens:
            start = x["text"].index(token, at)
            at = start + len(token)
            share = (x1 - x0) / len(x["text"])
            words.append(Word(token, [x0 + start * share, y0, x0 + at * share, y1]))
        lines.append(Line(x["text"], x["box"], 1.0, words))
    return lines


def test_columns_come_from_the_inks_gutters_and_a_token_read_across_a_gutter_is_split():
    from mlexp.tasks.document_extraction.page_layout import build_page

    page = documents.generate("account_statement", 13, 0, 5)
    truth = page_from_json({"tables": page.tables}).tables[0]
    header = truth.grid()[0]
    amount, balance = header.index("Amount"), header.index("Balance")
    lines = _ocr_like_lines(page)
    # the reader joined two cells of row 2 across their gutter into one token, as RapidOCR does ("-4,644.2724,722.60")
    left, right = (next(c for c in truth.cells if c.row == 2 and c.column == k) for k in (amount, balance))
    joined = [line for line in lines if line.text in (left.text, right.text) and line.box[1] == left.box[1]]
    assert len(joined) == 2
    lines = [line for line in lines if not any(line is j for j in joined)]
    box = [left.box[0], left.box[1], right.box[2], right.box[3]]
    lines.append(Line(left.text + right.text, box, 1.0, [Word(left.text + right.text, box)]))
    image = np.asarray(page.image)
    found = build_page(1, image, lines, OmegaConf.structured(DocumentLayout))
    [table] = found.tables
    assert (table.rows, table.columns) == (truth.rows, truth.columns)
    assert table.grid()[2][amount] == left.text and table.grid()[2][balance] == right.text
    assert table.grid() == truth.grid()


def _table_of(kind, seed, index):
    """The generated page (5 rows), its true table and the one table read from its drawn words on its ink."""
    from mlexp.tasks.document_extraction.page_layout import build_page

    page = documents.generate(kind, seed, index, 5)
    truth = page_from_json({"tables": page.tables}).tables[0]
    [table] = build_page(1, np.asarray(page.image), _ocr_like_lines(page), OmegaConf.structured(DocumentLayout)).tables
    return page, truth, table


def test_a_header_only_column_one_space_from_its_neighbour_in_a_monospaced_font_stays_a_column():
    from mlexp.tasks.document_extraction import ink

    # development seeds in DejaVu Sans Mono, where a one-digit gutter is one word space wide: the unused "Ref"
    # column is one space after "Description" (6/1), one space before "Quantity" (128/1); both were merged
    for seed, index in ((6, 1), (128, 1)):
        page, truth, table = _table_of("account_statement", seed, index)
        assert page.family == "DejaVu Sans Mono" and "Ref" in truth.grid()[0]
        assert table.grid() == truth.grid()
    lines = _ocr_like_lines(page)
    mask = ink.ink_mask(np.asarray(page.image), layout.text_height(lines))
    space, digit = ink.word_space(mask, lines), ink.digit_advance(mask, lines)
    assert digit == pytest.approx(page.font("0").getlength("0"), abs=1.0)
    assert space >= ink.MONOSPACED_SPACE_DIGITS * digit  # a word space wider than a digit: monospaced
    # in the same font a header's own word space stays one header ("Site latitude" over short latitudes) ...
    page, truth, table = _table_of("annual_report", 6, 0)
    assert page.family == "DejaVu Sans Mono" and table.grid()[0] == truth.grid()[0]
    assert "Site latitude" in table.grid()[0]
    # ... and so does a word space that every body row leaves blank next to one long description's last word
    page, truth, table = _table_of("account_statement", 126, 3)
    assert page.family == "DejaVu Sans Mono"
    assert [row[1] for row in table.grid()] == [row[1] for row in truth.grid()]


def test_a_missing_font_is_one_error_naming_its_package(monkeypatch):
    from pathlib import Path

    from mlexp.tasks.document_extraction.stages import generated_page

    monkeypatch.setattr(documents, "CJK_FONT", Path("/nonexistent/wqy/wqy-microhei.ttc"))
    with pytest.raises(
        DataError,
        match=r"wqy-microhei.ttc is missing \(Debian package fonts-wqy-microhei\); .*"
        r"apt-get install fonts-dejavu-core fonts-noto-core fonts-wqy-microhei",
    ):
        generated_page("pay_stub", 1, 0, 2, {"clean": {}}, "clean")


def test_symbol_precision_counts_a_false_symbol_and_wer_counts_words():
    truth = Page(1, 100, 100, [Line("Paid $ 5 and 12 Sales", [0, 0, 90, 10])])
    # the $ is read right, "12" gains a degree sign, and "Sales" is read as "$ales" (a false dollar)
    found = Page(1, 100, 100, [Line("Paid $ 5 and 12° $ales", [0, 0, 90, 10])])
    m = metrics.ratios(metrics.compare(truth, found))
    assert m["symbol_recall_dollar"] == 1.0 and m["symbol_precision_dollar"] == 0.5
    assert m["symbol_precision_degree"] == 0.0 and "symbol_recall_degree" not in m  # no true ° to recall
    assert m["wer"] == pytest.approx(2 / 6)  # two of six words wrong
    assert m["cer"] == pytest.approx(2 / len("Paid $ 5 and 12 Sales"))


def _ink_centroid(image, box, margin):
    """Centre of the dark pixels within `box` grown by `margin` (the drawn square and its mark)."""
    gray = np.asarray(image.convert("L"))
    x0, y0, x1, y1 = (int(v) for v in (box[0] - margin, box[1] - margin, box[2] + margin, box[3] + margin))
    ys, xs = np.nonzero(gray[y0:y1, x0:x1] < 128)
    return x0 + xs.mean(), y0 + ys.mean()


def test_a_skewed_page_moves_every_check_box_box_onto_its_drawn_square():
    page = degrade(documents.generate("pay_stub", 4, 0, 3), {"skew_degrees": 4.0}, np.random.default_rng(4))
    assert page.image.size[0] > documents.WIDTH  # rotated with expand: the canvas grew
    assert len(page.selection_elements) >= 6
    for element in page.selection_elements:
        box = element["box"]
        cx, cy = _ink_centroid(page.image, box, margin=6)
        # 3.5° (rng 4) over ~700 px from the page centre moves a box ~45 px: an unmoved or wrongly turned box misses it
        assert box[0] <= cx <= box[2] and box[1] <= cy <= box[3]


def test_blur_and_uneven_light_change_the_pixels_not_the_ground_truth():
    from mlexp.tasks.document_extraction import checkboxes

    clean = documents.generate("bank_statement", 4, 0, 3)
    boxes = [e["box"] for e in clean.selection_elements]
    sharp = np.asarray(clean.image.convert("L"), dtype=np.float32)
    blurred = degrade(documents.generate("bank_statement", 4, 0, 3), {"blur_sigma": 1.5}, np.random.default_rng(0))
    soft = np.asarray(blurred.image.convert("L"), dtype=np.float32)
    assert np.abs(np.diff(soft, axis=1)).mean() < 0.7 * np.abs(np.diff(sharp, axis=1)).mean()
    assert [e["box"] for e in blurred.selection_elements] == boxes
    lit = degrade(documents.generate("bank_statement", 4, 0, 3), {"uneven_light": 0.5}, np.random.default_rng(0))
    gray = np.asarray(lit.image.convert("L"), dtype=np.float32)
    corners = [gray[:20, :20].mean(), gray[:20, -20:].mean(), gray[-20:, :20].mean(), gray[-20:, -20:].mean()]
    assert max(corners) > 200 and min(corners) < 160  # the paper falls from white to half grey across the page
    # the check boxes are still all found, in their states, in the dark part too
    found = checkboxes.find(np.asarray(lit.image), 21, 0.12)
    truth = {tuple(e["box"]): e["state"] for e in lit.selection_elements}
    hits = [
        (box, f.state)
        for box in truth
        for f in found
        if box[0] <= (f.box[0] + f.box[2]) / 2 <= box[2] and box[1] <= (f.box[1] + f.box[3]) / 2 <= box[3]
    ]
    assert len(hits) == len(truth) and all(truth[box] == state for box, state in hits)


def test_dvc_runs_extract_again_when_any_layout_setting_changes_and_evaluate_alone_for_the_annotated_pages():
    pipeline = yaml.safe_load((REPO / "pipelines" / "document_extraction" / "dvc.yaml").read_text())["stages"]
    # `dvc exp run -S document_extraction.model.gutter_word_spaces=0` must extract again, not reuse the old tables
    extract = {p.removeprefix("document_extraction.") for p in pipeline["extract"]["params"]}
    evaluate = {p.removeprefix("document_extraction.") for p in pipeline["evaluate"]["params"]}
    settings = {f"model.{field.name}" for field in dataclasses.fields(DocumentLayout)}
    assert settings - {"model.annotated_pages"} <= extract
    assert "model.annotated_pages" in evaluate and "model.annotated_pages" not in extract


def _kept_figures(monkeypatch) -> list:
    from mlexp.tasks.document_extraction import charts

    figures: list = []
    monkeypatch.setattr(charts, "_save", lambda fig, path: figures.append(fig) or path)
    return figures


def test_symbol_bars_show_their_counts_and_the_legend_sits_outside_them(monkeypatch, tmp_path):
    from mlexp.tasks.document_extraction import charts

    figures = _kept_figures(monkeypatch)
    counts = {"symbol_hit_₹": 15, "symbol_true_₹": 16, "symbol_found_₹": 15}
    charts.symbol_accuracy(metrics.ratios(counts), tmp_path / "s.png", "t", counts)
    fig = figures[0]
    fig.canvas.draw()
    [ax] = fig.axes
    assert "15/16" in [t.get_text() for t in ax.texts] and "15/15" in [t.get_text() for t in ax.texts]
    assert ax.get_ylabel()
    assert not ax.get_legend().get_window_extent().overlaps(ax.get_window_extent())


def test_scores_by_degradation_are_points_named_by_what_they_measure_on_a_range_that_parts_them(monkeypatch, tmp_path):
    from mlexp.tasks.document_extraction import charts

    figures = _kept_figures(monkeypatch)
    rows = [
        {"group": "clean", "text_accuracy": 1.0, "key_value_f1": 0.99, "check_box_state_accuracy": 1.0},
        {"group": "dpi100_noise", "text_accuracy": 0.97, "key_value_f1": 0.98, "check_box_state_accuracy": 0.96},
    ]
    charts.accuracy_by_degradation(rows, tmp_path / "d.png")
    [ax] = figures[0].axes
    assert all(line.get_linestyle() == "None" for line in ax.get_lines())  # no line across categories
    assert "key-value F1" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert ax.get_ylabel() != "accuracy"
    assert ax.get_ylim()[0] > 0.8
    # side by side: the three series at one level do not share an x
    assert len({line.get_xdata()[0] for line in ax.get_lines()}) == 3


def test_annotated_pages_cover_every_document_type_before_a_second_of_one():
    from mlexp.tasks.document_extraction.stages import pages_to_annotate

    entries = [
        {"name": f"{t}_{i}", "document_type": t}
        for t in ("annual_report", "pay_stub", "bank_statement")
        for i in range(3)
    ]
    assert pages_to_annotate(entries, 4) == {"annual_report_0", "pay_stub_0", "bank_statement_0", "annual_report_1"}


def test_annotated_page_pads_its_outlines_and_has_a_colour_key(tmp_path):
    from PIL import Image

    from mlexp.tasks.document_extraction import charts

    Image.new("RGB", (200, 100), "white").save(tmp_path / "page.png")
    page = Page(1, 200, 100, lines=[Line("x", [50, 40, 150, 60])])
    out = Image.open(charts.annotated_page(tmp_path / "page.png", page, tmp_path / "annotated.png"))
    assert out.height > 100  # the key under the page
    blue = charts.KEY["line"]
    assert out.getpixel((100, 40)) == (255, 255, 255) and out.getpixel((100, 40 - charts.PAD)) == blue
