"""The rules across document_extraction's config keys (the task's `constraints`), which its stages check again.

Their own module, not the package's `__init__`: a stage's DVC dependencies are the modules it imports, and a range or
a help text edited in `__init__` must not re-run the stages. Nor does it import the generator
(mlexp.data.documents, mlexp.data.document_scan: NumPy, Pillow, OpenCV), which every command would then load; their
names are repeated here, and a test keeps both in step.
"""

import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

from mlexp.aws_setup import REGION, AwsCredentials, credentials_found
from mlexp.config.bounds import Bound, at_least, between
from mlexp.config.constraints import Constraint, shown_value
from mlexp.errors import GIVE_CREDENTIALS, a_or_an, did_you_mean, no_credentials
from mlexp.tasks.document_extraction.charset import recogniser_characters

# mlexp.data.documents.DOCUMENT_TYPES
DOCUMENT_TYPES = ("annual_report", "account_statement", "pay_stub", "bank_statement")
# the generated types whose page holds a table: a header row over dataset.n_rows rows (the others are forms)
TABLE_TYPES = ("annual_report", "account_statement")
# mlexp.data.document_scan.SETTINGS, each with its range (null: the setting is not applied)
SETTINGS = {
    "dpi": at_least(1),  # resampled from the generator's 200 dpi
    "skew_degrees": Bound(),  # any angle: the page turns by a uniform share of it, either way
    "blur_sigma": at_least(0),
    "noise_sigma": at_least(0),  # grey levels
    "uneven_light": between(0, 1),  # the light's fall-off across the page
    "jpeg_quality": between(0, 100),  # 0: not JPEG-encoded
}
# a level names its pages (<type>_<index>_<level>.png) and its metrics (<metric>/<level>)
LEVEL_NAME = re.compile(r"[A-Za-z0-9_.-]+")
# the metric group of every document: a level of this name would be merged into it (as one named after a type)
ALL = "all"


def _not_among(names: Sequence[str], known: Iterable[str], what: str) -> str:
    """`names` are not `what` (each with the known name its spelling is closest to), then the known names."""
    options = list(known)
    choices = f"choose from: {', '.join(options)}"
    if len(names) == 1:
        return f"{names[0]} is not {a_or_an(what)}; {did_you_mean(names[0], options)}{choices}"
    listed = ", ".join(
        f"{name}{f' ({hint.strip()})' if (hint := did_you_mean(name, options)) else ''}" for name in names
    )
    return f"{listed} are not {what}s; {choices}"


def types_problem(path: str | None, types: list[str]) -> str | None:
    """What keeps dataset.types from drawing generated documents (dataset.path null), or None."""
    if path is not None:
        return None  # the user's documents: no type is drawn
    if not types:
        return f"dataset.types is empty, so no page would be drawn; list one or more of: {', '.join(DOCUMENT_TYPES)}"
    names = [str(name) for name in types]
    unknown = [name for name in dict.fromkeys(names) if name not in DOCUMENT_TYPES]
    if unknown:
        return _not_among(unknown, DOCUMENT_TYPES, "document type")
    twice = [name for name in dict.fromkeys(names) if names.count(name) > 1]
    if twice:
        return (
            f"{', '.join(twice)} listed more than once; list each type once (its documents would be drawn again "
            "under the same names and counted twice)"
        )
    return None


def types_are_drawn(path: str | None, types: list[str]) -> bool:
    return types_problem(path, types) is None


def level_problem(name: str, level: Any) -> str | None:
    """What keeps dataset.degradations.<name> from being applied to a generated page, or None."""
    where = f"dataset.degradations.{name}"
    if not LEVEL_NAME.fullmatch(name):
        return f"{where}: a level's name takes letters, digits, _, - and . only (it names files and metrics)"
    if name == ALL or name in DOCUMENT_TYPES:
        group = "all documents (the group all)" if name == ALL else f"the document type {name} (<metric>/{name})"
        return f"{where}: its metrics would be merged into those of {group}; rename the level"
    if not isinstance(level, dict):
        return f"{where} must be a mapping of settings (e.g. {{dpi: 100}}), not {shown_value(level)}"
    unknown = [str(setting) for setting in level if setting not in SETTINGS]
    if unknown:  # a misspelt dip: 100 would give clean pages under a 100 dpi label
        return f"{where}: {_not_among(unknown, SETTINGS, 'scan setting')}"
    for setting, value in level.items():
        if value is None:
            continue
        bound = SETTINGS[setting]
        must = f"it must be {str(bound) or 'a finite number'} (or null: not applied)"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{where}.{setting}={shown_value(value)} is not a number: {must}"
        if not bound.holds(value):
            return f"{where}.{setting}={shown_value(value)} is out of range: {must}"
    return None


def degradations_problem(path: str | None, degradations: dict[str, Any]) -> str | None:
    """What keeps dataset.degradations from scanning generated documents (dataset.path null), or None."""
    if path is not None:
        return None  # the user's documents are as scanned
    if not degradations:
        return "dataset.degradations has no level, so no page would be drawn; add one: dataset.degradations={clean:{}}"
    return next(filter(None, (level_problem(str(name), level) for name, level in degradations.items())), None)


def degradations_apply(path: str | None, degradations: dict[str, Any]) -> bool:
    return degradations_problem(path, degradations) is None


def signs_to_rescue(currency_threshold: float, currency_signs: str) -> bool:
    """Whether the currency-sign rule has a sign to look for (threshold 0: it is off)."""
    return currency_threshold == 0 or len(currency_signs) > 0


def signs_unread(currency_signs: str) -> str:
    """The signs of `currency_signs` the recogniser cannot read, each once ("" also when its characters are not
    known here: the stage checks them against the model it loads)."""
    known = recogniser_characters()
    return "" if known is None else "".join(dict.fromkeys(sign for sign in currency_signs if sign not in known))


def signs_read(currency_signs: str, currency_threshold: float) -> bool:
    """Whether the recogniser can read each sign the currency-sign rule looks for (threshold 0: it is off)."""
    return currency_threshold == 0 or not signs_unread(currency_signs)


def currency_signs_read() -> str:
    """The currency signs (Unicode's Sc) among the recogniser's characters, in code point order."""
    return "".join(sorted(c for c in recogniser_characters() or () if unicodedata.category(c) == "Sc"))


def textract_has_credentials(engine: str) -> bool:
    """Whether engine=textract finds AWS credentials (aws_setup.credentials_found: offline); the others need none."""
    return engine != "textract" or credentials_found()


# the line textract.analyze gives, when the credentials vanished after this check
TEXTRACT_NO_CREDENTIALS = no_credentials("engine=textract", without_aws="engine=local_ocr")


GENERATED_TYPES = Constraint(
    ("dataset.path", "dataset.types"),
    types_are_drawn,
    "generated documents (dataset.path null) are drawn for each of dataset.types: one or more of the generator's "
    "document types, each once",
    lambda path, types: types_problem(path, types) or "",
)
GENERATED_LEVELS = Constraint(
    ("dataset.path", "dataset.degradations"),
    degradations_apply,
    "generated documents (dataset.path null) are scanned at each level of dataset.degradations: one or more, "
    f"each a mapping of known scan settings in their ranges, not named {ALL} nor after a document type",
    lambda path, degradations: degradations_problem(path, degradations) or "",
)


def tables_are_found(engine: Any, path: str | None, types: Any, n_rows: Any, min_rows: Any) -> bool:
    """A generated table (header and dataset.n_rows rows) has the rows model.table_min_rows asks of a table; Textract
    finds tables its own way (the layout code's table_min_rows applies to the local engine's words only)."""
    drawn = isinstance(types, list) and any(kind in TABLE_TYPES for kind in types)
    numbers = all(isinstance(value, int) for value in (n_rows, min_rows))
    return engine == "textract" or path is not None or not drawn or not numbers or n_rows + 1 >= min_rows


GENERATED_TABLES = Constraint(
    ("engine.name", "dataset.path", "dataset.types", "dataset.n_rows", "model.table_min_rows"),
    tables_are_found,
    f"a generated table ({', '.join(TABLE_TYPES)}) is a header row over dataset.n_rows rows, and a table has at "
    "least model.table_min_rows rows (header included): with fewer, no table is found and every table metric is 0",
    lambda _engine, _path, _types, n_rows, min_rows: (
        f"raise dataset.n_rows to {min_rows - 1}, or lower model.table_min_rows to {n_rows + 1}"
    ),
)


CURRENCY_SIGNS = Constraint(
    ("engine.currency_threshold", "engine.currency_signs"),
    signs_to_rescue,
    "engine.currency_threshold above 0 reads a sign of engine.currency_signs greedy decoding dropped, so "
    "engine.currency_signs needs one",
    "give engine.currency_signs back its signs (default ₹£$¥€), or set engine.currency_threshold=0 (plain greedy "
    "decoding)",
)
KNOWN_SIGNS = Constraint(
    ("engine.currency_signs", "engine.currency_threshold"),
    signs_read,
    "each of engine.currency_signs must be a character the recogniser (PP-OCRv6 small) reads, for "
    "engine.currency_threshold above 0 to find it where greedy decoding dropped it",
    lambda signs, _: (
        f"it does not read {signs_unread(signs)}: remove {'it' if len(signs_unread(signs)) == 1 else 'them'} (the "
        f"currency signs it reads: {currency_signs_read()}), or set engine.currency_threshold=0"
    ),
)
CREDENTIALS = AwsCredentials(
    ("engine.name",),
    textract_has_credentials,
    "engine=textract sends each page with the AWS credentials botocore finds (environment, ~/.aws, an SSO login, a "
    "container's or an instance's role)",
    f"{GIVE_CREDENTIALS}, or use engine=local_ocr",
    TEXTRACT_NO_CREDENTIALS,
)
CONSTRAINTS = (GENERATED_TYPES, GENERATED_LEVELS, GENERATED_TABLES, CURRENCY_SIGNS, KNOWN_SIGNS, REGION, CREDENTIALS)
