"""document_extraction's rules across keys (config_rules.py): a list or choice value its stages cannot use is one line
before a trial opens, where `prepare` or `extract` used to fail the trial (or finish it with nothing drawn). The
stages check the same rules, and a params.yaml value that breaks one is refused naming the file."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from conftest import REPO, one_line_error, run_cli
from mlexp import tasks
from mlexp.config import make_composable
from mlexp.config.constraints import check_constraints
from mlexp.errors import ConfigError
from mlexp.tasks.document_extraction.config import DocumentLayout, TextractEngine

TASK = "task=document_extraction"
TYPES = "choose from: annual_report, account_statement, pay_stub, bank_statement"
SETTINGS = "choose from: dpi, skew_degrees, blur_sigma, noise_sigma, uneven_light, jpeg_quality"
TYPES_RULE = (
    "generated documents (dataset.path null) are drawn for each of dataset.types: one or more of the generator's "
    "document types, each once"
)
LEVELS_RULE = (
    "generated documents (dataset.path null) are scanned at each level of dataset.degradations: one or more, each a "
    "mapping of known scan settings in their ranges, not named all nor after a document type"
)
DEFAULT_LEVELS = "clean: {}, dpi100_noise: {dpi: 100, noise_sigma: 12.0}"

# the command line, and the line it is refused with; what each did before, in a comment
REFUSED = [
    # "stage 'prepare' failed: dataset.types: ['invoice', 'recipt'] are not document types; ..." (trial FAILED)
    (
        ["dataset.types=[account_statement,pay_stb]"],
        f"dataset.path=null, dataset.types=[account_statement, pay_stb]: {TYPES_RULE}; pay_stb is not a document type; "
        f"did you mean pay_stub? {TYPES}",
    ),
    (
        ["dataset.types=[invoice,bank_statment]"],
        f"dataset.path=null, dataset.types=[invoice, bank_statment]: {TYPES_RULE}; invoice, bank_statment (did you "
        f"mean bank_statement?) are not document types; {TYPES}",
    ),
    # the trial finished with no page, no metric
    (
        ["dataset.types=[]"],
        f"dataset.path=null, dataset.types=[]: {TYPES_RULE}; dataset.types is empty, so no page would be drawn; list "
        "one or more of: annual_report, account_statement, pay_stub, bank_statement",
    ),
    # the trial finished: each pay stub drawn twice under one name, its metrics counted twice
    (
        ["dataset.types=[pay_stub,account_statement,pay_stub]"],
        f"dataset.path=null, dataset.types=[pay_stub, account_statement, pay_stub]: {TYPES_RULE}; pay_stub listed "
        "more than once; list each type once (its documents would be drawn again under the same names and counted "
        "twice)",
    ),
    # the trial finished with no page, no metric
    (
        ["~dataset.degradations.clean", "~dataset.degradations.dpi100_noise"],
        f"dataset.path=null, dataset.degradations={{}}: {LEVELS_RULE}; dataset.degradations has no level, so no page "
        "would be drawn; add one: dataset.degradations={clean:{}}",
    ),
    # "stage 'prepare' failed: dataset.degradations.clean: unknown setting dip; choose from dpi, ..." (trial FAILED)
    (
        ["+dataset.degradations.clean.dip=100"],
        f"dataset.path=null, dataset.degradations={{clean: {{dip: 100}}, dpi100_noise: {{dpi: 100, noise_sigma: "
        f"12.0}}}}: {LEVELS_RULE}; dataset.degradations.clean: dip is not a scan setting; did you mean dpi? {SETTINGS}",
    ),
    # "stage 'prepare' failed: dataset.degradations.clean must be a mapping of settings ..." (trial FAILED)
    (
        ["dataset.degradations.clean=5"],
        f"dataset.path=null, dataset.degradations={{clean: 5, dpi100_noise: {{dpi: 100, noise_sigma: 12.0}}}}: "
        f"{LEVELS_RULE}; dataset.degradations.clean must be a mapping of settings (e.g. {{dpi: 100}}), not 5",
    ),
    # "stage 'prepare' failed: ValueError: scale < 0" (a traceback in the trial's error.txt)
    (
        ["+dataset.degradations.clean.noise_sigma=-3"],
        f"dataset.path=null, dataset.degradations={{clean: {{noise_sigma: -3}}, dpi100_noise: {{dpi: 100, "
        f"noise_sigma: 12.0}}}}: {LEVELS_RULE}; dataset.degradations.clean.noise_sigma=-3 is out of range: it must "
        "be at least 0 (or null: not applied)",
    ),
    # "stage 'prepare' failed: ValueError: invalid literal for int() with base 10: 'abc'"
    (
        ["+dataset.degradations.clean.dpi=abc"],
        f"dataset.path=null, dataset.degradations={{clean: {{dpi: abc}}, dpi100_noise: {{dpi: 100, noise_sigma: "
        f"12.0}}}}: {LEVELS_RULE}; dataset.degradations.clean.dpi=abc is not a number: it must be at least 1 (or "
        "null: not applied)",
    ),
    # the trial finished: the level's documents counted twice in the overall metrics
    (
        ["+dataset.degradations.all={}"],
        f"dataset.path=null, dataset.degradations={{{DEFAULT_LEVELS}, all: {{}}}}: {LEVELS_RULE}; "
        "dataset.degradations.all: its metrics would be merged into those of all documents (the group all); rename "
        "the level",
    ),
    # "stage 'extract' failed: ValueError: attempt to get argmax of an empty sequence", after the pages were drawn
    (
        ["engine.currency_signs=''"],
        "engine.currency_threshold=0.1, engine.currency_signs=: engine.currency_threshold above 0 reads a sign of "
        "engine.currency_signs greedy decoding dropped, so engine.currency_signs needs one; give "
        "engine.currency_signs back its signs (default ₹£$¥€), or set engine.currency_threshold=0 (plain greedy "
        "decoding)",
    ),
    # "stage 'extract' failed: InvalidRegionError: Provided region_name 'us east' doesn't match a supported format."
    (
        ["engine=textract", "engine.region_name=us_east"],
        "engine.region_name=us_east: engine.region_name is the code of an AWS region: letters, digits and hyphens, "
        "as boto3 requires; give one such as engine.region_name=us-east-1",
    ),
]


@pytest.mark.parametrize(("args", "line"), REFUSED, ids=[" ".join(args) for args, _ in REFUSED])
def test_a_value_the_stages_cannot_use_is_one_line_before_a_trial_opens(tmp_project, args, line):
    assert one_line_error(tmp_project, TASK, "dataset.n_per_type=1", "dataset.n_rows=4", *args) == line


def test_a_sweep_listing_an_unknown_type_is_refused_before_its_record_opens(tmp_project):
    message = one_line_error(tmp_project, "-m", TASK, "dataset.types=[pay_stub],[pay_stb]", "dataset.n_per_type=1")
    assert message == (
        "the sweep would run dataset.path=null, dataset.types=[pay_stb] (from dataset.types=[pay_stub],[pay_stb]): "
        f"{TYPES_RULE}; pay_stb is not a document type; did you mean pay_stub? {TYPES}"
    )


def test_a_params_file_value_breaking_a_rule_is_refused_naming_the_file(tmp_project):
    path = tmp_project / "params.yaml"
    sections = yaml.safe_load((REPO / "params.yaml").read_text())
    sections["document_extraction"]["dataset"]["types"] = ["pay_stub", "invoice"]
    path.write_text(yaml.safe_dump(sections, allow_unicode=True))
    line = one_line_error(tmp_project, TASK, "stage=prepare", "params_file=params.yaml")
    assert line == (
        f"{path}: section document_extraction: dataset.path=null, dataset.types=[pay_stub, invoice]: {TYPES_RULE}; "
        f"invoice is not a document type; {TYPES}; or regenerate the file with `mlexp params`"
    )


def _composed(*overrides: str):
    make_composable()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose("config", overrides=[TASK, *overrides])


def test_the_rules_pass_at_the_edges_of_each_range_and_leave_the_users_documents_alone(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")  # engine=textract's credentials (never used: no rule calls AWS)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    constraints = tasks.get("document_extraction").constraints
    judged = {("dataset.path", "dataset.types"), ("dataset.path", "dataset.degradations"), ("engine.region_name",)}
    judged.add(("engine.name",))  # engine=textract's credentials
    judged.add(("engine.name", "dataset.path", "dataset.types", "dataset.n_rows", "model.table_min_rows"))
    currency = {
        ("engine.currency_threshold", "engine.currency_signs"),
        ("engine.currency_signs", "engine.currency_threshold"),
    }
    assert judged | currency == {c.keys for c in constraints}
    edges = "{dpi: 1, blur_sigma: 0, noise_sigma: 0, uneven_light: 1, jpeg_quality: 100, skew_degrees: -3}"
    for overrides in (
        ["dataset.types=[pay_stub]", f"+dataset.degradations.edge={edges}", "+dataset.degradations.none={dpi: null}"],
        ["+dataset.degradations.low={uneven_light: 0, jpeg_quality: 0}", "+dataset.degradations.v2-1_5={}"],
        ["engine.currency_threshold=0", "engine.currency_signs=''"],  # the sign rule is off
        ["engine=textract", "engine.region_name=ap-southeast-1"],
        ["engine=textract", "dataset.n_rows=1"],  # Textract finds its tables itself: table_min_rows is not its
        ["dataset.n_rows=2"],  # a header over 2 rows: the table_min_rows of 3
        # types and levels are the generator's: with dataset.path set nothing is drawn
        ["dataset.path=/scans", "dataset.types=[]", "~dataset.degradations.clean", "+dataset.degradations.all=5"],
    ):
        check_constraints(_composed(*overrides), constraints)


def test_prepare_refuses_what_the_rule_refuses_with_the_same_line(tmp_path):
    from mlexp.tasks.document_extraction import config_rules
    from mlexp.tasks.document_extraction.stages import prepare

    for overrides in (["dataset.types=[pay_stb]"], ["+dataset.degradations.clean.dip=100"]):
        cfg = _composed(f"paths.data={tmp_path}", *overrides)
        before_the_trial = config_rules.CONSTRAINTS
        with pytest.raises(ConfigError) as refused:
            check_constraints(cfg, before_the_trial)
        with pytest.raises(ConfigError) as in_the_stage:
            prepare(cfg, tracker=None)  # refused before anything is drawn or logged
        assert str(in_the_stage.value) == str(refused.value)
        assert not list((tmp_path / "pages").iterdir())


def test_the_engines_refuse_what_the_rules_refuse():
    from mlexp.tasks.document_extraction.engines import TextractExtractor
    from mlexp.tasks.document_extraction.ocr_local import RapidOcrReader

    with pytest.raises(ConfigError, match=r"^engine.currency_threshold=0.1, engine.currency_signs=: "):
        RapidOcrReader(1, 960, 0.5, 8, currency_threshold=0.1, currency_signs="")
    engine = OmegaConf.merge(OmegaConf.structured(TextractEngine), {"region_name": "us east"})
    with pytest.raises(ConfigError, match=r"^engine.region_name=us east: engine.region_name is the code"):
        TextractExtractor(engine, OmegaConf.structured(DocumentLayout))


def test_the_rules_name_the_generators_types_and_settings():
    # repeated in config_rules, which every command imports, so that it loads neither NumPy nor OpenCV
    from mlexp.data import document_scan, documents
    from mlexp.tasks.document_extraction import config_rules

    assert config_rules.DOCUMENT_TYPES == documents.DOCUMENT_TYPES
    assert tuple(config_rules.SETTINGS) == document_scan.SETTINGS
    with_tables = tuple(kind for kind in documents.DOCUMENT_TYPES if documents.generate(kind, 0, 0, 2).tables)
    assert with_tables == config_rules.TABLE_TYPES


def test_generated_tables_too_short_to_be_found_are_refused_before_the_trial(tmp_project):
    # a header over one row is below model.table_min_rows=3: the trial scored every table metric 0 without a word
    line = one_line_error(
        tmp_project, "task=document_extraction", "dataset.types=[account_statement]", "dataset.n_rows=1"
    )
    assert line.endswith(
        "with fewer, no table is found and every table metric is 0; raise dataset.n_rows to 2, or lower "
        "model.table_min_rows to 2"
    )
    # forms have no table; a lower threshold finds it
    check = tasks.get("document_extraction").constraints
    generated = {
        "engine": {"name": "local_ocr"},
        "dataset": {"path": None, "types": ["pay_stub"], "n_rows": 1},
        "model": {"table_min_rows": 3},
    }
    check_constraints(OmegaConf.create(generated), check)
    generated["dataset"]["types"], generated["model"]["table_min_rows"] = ["annual_report"], 2
    check_constraints(OmegaConf.create(generated), check)


@pytest.mark.parametrize(
    "name",
    ["us-east-1", "ap-southeast-1", "us-gov-west-1", "x", "us east", "us_east", "-us", "us-", "123", "", "a" * 64],
)
def test_a_region_name_is_refused_exactly_when_boto3_would_refuse_it(name):
    from botocore.exceptions import InvalidRegionError
    from botocore.utils import validate_region_name

    from mlexp.aws_setup import region_name_valid

    try:
        validate_region_name(name)
        botocore_takes = name != ""  # boto3 builds no endpoint from an empty name (https://textract..amazonaws.com)
    except InvalidRegionError:
        botocore_takes = False
    assert region_name_valid(name) == botocore_takes


def test_help_lists_the_rules_with_the_values_they_judge(tmp_project):
    out = run_cli(tmp_project, "--help", TASK, "dataset.types=[pay_stb]").stdout
    rules = out.split("== Rules across keys (task=document_extraction): a config breaking one is refused before")[1]
    lines = rules.splitlines()
    assert f"  {TYPES_RULE}   (now dataset.path=null, dataset.types=[pay_stb])  <- broken: refused" in lines
    assert f"  {LEVELS_RULE}   (now dataset.path=null, dataset.degradations={{{DEFAULT_LEVELS}}})" in lines
    out = run_cli(tmp_project, "--help", TASK, "engine=textract").stdout
    assert "  engine.region_name is the code of an AWS region" in out


def test_the_scanner_applies_the_edges_the_rules_let_through():
    from mlexp.data import document_scan, documents
    from mlexp.tasks.document_extraction.config_rules import level_problem

    page = documents.generate("pay_stub", 1, 0, 2)
    level = {"dpi": 1, "blur_sigma": 0, "noise_sigma": 0, "uneven_light": 1, "jpeg_quality": 100, "skew_degrees": 0}
    assert level_problem("edge", level) is None
    scanned = document_scan.degrade(page, level, np.random.default_rng(0))
    assert min(scanned.image.size) >= 1
