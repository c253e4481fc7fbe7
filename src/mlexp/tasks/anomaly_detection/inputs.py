"""The trips a trial reads: TLC files given by dataset.path or a generated month, recorded in a manifest.

The prepare stage checks every file's columns, parses CSV once into Parquet (each query would
otherwise parse the text again) and writes `input/manifest.json`; the later stages open their
engine from it, so under DVC each stage reads exactly what prepare checked.
"""

from __future__ import annotations

import gzip
import json
import math
import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
from omegaconf import DictConfig, OmegaConf

from mlexp.config.schema import choice_text
from mlexp.console import warn
from mlexp.data import nyc_taxi, nyc_taxi_synthetic
from mlexp.errors import DataError
from mlexp.tasks.anomaly_detection.dialects import DUCKDB, Dialect, literal, quote
from mlexp.tasks.anomaly_detection.engines import (
    AthenaEngine,
    DuckDBEngine,
    Engine,
    OutputError,
    Tally,
    connect,
    file_month_sql,
    write_parquet,
)
from mlexp.tasks.anomaly_detection.queries import (
    FILE_MONTH,
    UNKNOWN_CODE,
    UNREADABLE_NUMBER,
    Source,
    TripQueries,
)
from mlexp.tasks.anomaly_detection.rules import Rule

MANIFEST = "manifest.json"
# a numeric column's values beyond its type's range: a warning's kind beside UNKNOWN_CODE and UNREADABLE_NUMBER, counted
# with the column's others (rows_unreadable_number_<column>, or rows_unknown_code_<column> in a coded column)
OUT_OF_RANGE = "__out_of_range_"
# the range of a numeric type that can be exceeded (a DOUBLE reads 1e400 as inf)
TYPE_RANGES = {"BIGINT": "whole numbers from -9223372036854775808 to 9223372036854775807"}
# a BIGINT column's numbers that are not whole (VendorID 2.5): read as null, with their own warning, like OUT_OF_RANGE
NOT_WHOLE = "__not_whole_"
# the typed reader's stop on such a number (or one a DOUBLE does not hold exactly, from 2**53): the file is read as text
NOT_WHOLE_STOP = "mlexp: a number that is not a whole one, or beyond 2**53, in a BIGINT column of "
EXACT = 2**53
# the staged copy of a CSV is read only by the trial's later stages: no compression to undo there
STAGED_COMPRESSION = "none"


def input_dir(cfg: DictConfig) -> Path:
    return Path(cfg.paths.data) / "input"


def aliases(cfg: DictConfig) -> dict[str, list[str]]:
    return OmegaConf.to_container(cfg.preprocessing.column_aliases)  # type: ignore[return-value]


def value_codes(cfg: DictConfig) -> dict[str, dict[str, int]]:
    return OmegaConf.to_container(cfg.preprocessing.value_codes)  # type: ignore[return-value]


def trip_queries(cfg: DictConfig, dialect: Dialect, source: Source) -> TripQueries:
    """The queries over `source` with the trial's column aliases, timestamp formats and value codes (no rules yet)."""
    formats = list(cfg.preprocessing.timestamp_formats)
    return TripQueries(dialect, source, aliases(cfg), formats, value_codes=value_codes(cfg))


def duckdb_engine(
    cfg: DictConfig, files: Sequence[nyc_taxi.TripFile], memory_limit: str, threads: int, compression: str = "none"
) -> DuckDBEngine:
    """DuckDB over `files`, each typed to today's schema with the trial's preprocessing."""
    formats = list(cfg.preprocessing.timestamp_formats)
    return DuckDBEngine(files, memory_limit, threads, aliases(cfg), formats, value_codes(cfg), compression)


def check_file_months(rules: Sequence[Rule], paths: Sequence[Path]) -> None:
    """A rule on file_month needs every file's month in its name; else it could judge no row."""
    using = [rule.name for rule in rules if rule.uses(FILE_MONTH)]
    unnamed = [path for path in paths if nyc_taxi.file_month(path) is None]
    if using and unnamed:
        raise DataError(
            f"{unnamed[0]}: no month (YYYY-MM) in the file name, which rule {using[0]} needs; "
            "rename the file as TLC does (yellow_tripdata_2019-01.parquet) or remove the rule from model.enabled"
        )


def check_table_months(rules: Sequence[Rule], engine: AthenaEngine) -> None:
    """On Athena the month comes from each row's S3 object name: fail naming one without it, as for files."""
    using = [rule.name for rule in rules if rule.uses(FILE_MONTH)]
    if not using:
        return
    rows, example = engine.rows_without_month()
    if rows:
        raise DataError(
            f"{example}: no month (YYYY-MM) in the object name ({rows:,} rows of table {engine.settings.database}."
            f"{engine.settings.table} come from such objects), which rule {using[0]} needs; rename the objects as "
            "TLC does (yellow_tripdata_2019-01.parquet) or remove the rule from model.enabled"
        )


def generate(cfg: DictConfig) -> tuple[Path, dict[str, int]]:
    """Write a synthetic month in TLC's format under input/; returns the file and its anomaly counts."""
    data = cfg.dataset
    rates = OmegaConf.to_container(data.anomalies)
    month = nyc_taxi_synthetic.generate(data.n_rows, cfg.seed, data.month, rates)  # type: ignore[arg-type]
    format = choice_text(data.format)
    path = input_dir(cfg) / f"yellow_tripdata_{data.month}_synthetic.{format}"
    return nyc_taxi_synthetic.write(month, path, format), month.counts


def check_files(cfg: DictConfig, paths: Sequence[Path], required: Sequence[str]) -> list[nyc_taxi.TripFile]:
    connection = duckdb.connect()
    files = [nyc_taxi.inspect(path, connection) for path in paths]
    for file in files:
        nyc_taxi.check_columns(file, required, aliases(cfg))
    return files


def missing_columns(cfg: DictConfig, columns: Iterable[str]) -> list[str]:
    """Today's columns a file lacks under every name (they read as null)."""
    matched = nyc_taxi.match_columns(columns, aliases(cfg))
    return [column for column in nyc_taxi.COLUMNS if column not in matched]


def check_rule_columns(cfg: DictConfig, rules: Sequence[Rule]) -> None:
    """A rule on a column some input lacks would silently flag nothing there: fail instead."""
    for source, missing in read_manifest(cfg).get("missing_columns", {}).items():
        for rule in rules:
            used = [column for column in missing if rule.uses(column)]
            if used:
                raise DataError(
                    f"{source}: no column {used[0]}, which rule {rule.name} uses ({rule.predicate}); "
                    f"remove the rule from model.enabled or add the file's name for {used[0]} "
                    f"to preprocessing.column_aliases.{used[0]}"
                )


def stage_csv(
    cfg: DictConfig,
    files: Sequence[nyc_taxi.TripFile],
    unknown: dict[str, Counter[str]] | None = None,
    unreadable: dict[str, Counter[str]] | None = None,
) -> list[Path]:
    """Each file as Parquet in today's schema (CSV parsed once; Parquet files are read in place).

    A file without a single trip row (a CSV of only a header, a Parquet file of 0 rows) fails here,
    naming the file: a month that holds nothing is a wrong path or a broken download.
    Text that reads as null is not dropped silently: in a coded column, text that is neither in
    preprocessing.value_codes nor a number; in a numeric column, text that is not a number ('two point five' in
    trip_distance). A warning names the file, the column, the values with their rows and the first one's line
    (CSV) or row (Parquet); `unknown` and `unreadable` (column -> value -> rows) add them up over the files.
    The rows are kept, with the value null.
    """
    read: list[Path] = []
    connection = connect(cfg.engine.memory_limit, cfg.engine.threads)
    for number, file in enumerate(files):
        source = Source(nyc_taxi.reader_sql(file), file.columns, file_month_sql(file.path))
        queries = trip_queries(cfg, DUCKDB, source)
        # marker (UNKNOWN_CODE or UNREADABLE_NUMBER + column) -> the values that read as null, found while staging
        found: dict[str, Tally] = {}
        if file.format != "csv" or not cfg.preprocessing.stage_csv_as_parquet:
            if not _has_rows(connection, file):
                raise DataError(f"{file.path}: no rows ({_nothing(file)}); check dataset.path")
            found = _unread_in_place(connection, file, queries)
            read.append(file.path)
        else:
            target = input_dir(cfg) / "staged" / staged_name(number, file.path)
            rows = _stage_typed(cfg, connection, file, target, found)
            if rows is None:  # not a strict CSV of numbers where numbers belong: every field read as text
                found = {}
                rows = write_parquet(
                    connection,
                    queries.staged(),
                    target,
                    None,
                    compression=STAGED_COMPRESSION,
                    source=file.path,
                    unread=found,
                )
            if not rows:
                target.unlink()
                raise DataError(f"{file.path}: no rows ({_nothing(file)}); check dataset.path")
            read.append(target)
        _warn_unread(connection, file, found)
        # every coded column a file holds as text is reported, 0 included (rows_unknown_code_<column>)
        for column in queries.coded_text():
            found.setdefault(UNKNOWN_CODE + column, Tally())
        for marker, tally in found.items():
            for prefix, total in ((UNKNOWN_CODE, unknown), (UNREADABLE_NUMBER, unreadable)):
                if marker.startswith(prefix) and total is not None:
                    total.setdefault(marker.removeprefix(prefix), Counter()).update(tally.counts)
    _remove_stale_copies(input_dir(cfg) / "staged", read)
    return read


def _unread_in_place(
    connection: duckdb.DuckDBPyConnection, file: nyc_taxi.TripFile, queries: TripQueries
) -> dict[str, Tally]:
    """The values of a file read in place (Parquet, or CSV with stage_csv_as_parquet=false) that read as null
    though written: one query, only when the file holds a coded or numeric column as text (every CSV; a Parquet
    file of 2009's text codes or of numbers stored as strings; never a Parquet file of numbers)."""
    found: dict[str, Tally] = {}
    if queries.unread() is None:
        return found
    try:
        for marker, value, rows, position in connection.execute(queries.unread_values()).fetchall():
            found.setdefault(marker, Tally()).add(value, rows, position)
    except duckdb.Error as error:
        raise DataError(nyc_taxi.read_error(error, file.path)) from error
    return found


def _warn_unread(connection: duckdb.DuckDBPyConnection, file: nyc_taxi.TripFile, found: dict[str, Tally]) -> None:
    """One warning per column whose text read as null, naming the first such row's line (CSV) or row (Parquet); one
    more for the numbers there beyond the range of the column's type (a BIGINT's 99999999999999999999), and one for
    those with a fraction where the type holds whole numbers (VendorID 2.5), which are neither text that is not a
    number nor an unknown code."""
    warned: list[tuple[str, str, Counter[str], int | None]] = []  # (kind, column, values, first position)
    for marker, tally in found.items():
        if not tally.counts:
            continue
        read_as = UNKNOWN_CODE if marker.startswith(UNKNOWN_CODE) else UNREADABLE_NUMBER
        column = marker.removeprefix(read_as)
        beyond, fractions = numbers_read_as_null(connection, tally.counts)
        kinds = ((read_as, set(tally.counts) - beyond - fractions), (OUT_OF_RANGE, beyond), (NOT_WHOLE, fractions))
        for kind, values in kinds:
            if values:  # values of as many rows in file order (each one's first row): the tally's own order is a
                # parallel query's, which differs from run to run
                order = sorted(values, key=lambda value: (tally.firsts.get(value, math.inf), value))
                counts = Counter({value: tally.counts[value] for value in order})
                warned.append((kind, column, counts, tally.first(values)))
    firsts = [first for *_, first in warned if first is not None]
    lines = line_numbers(file.path, firsts) if file.format == "csv" and firsts else {}
    for kind, column, counts, first in warned:
        where = ""
        if first is not None and file.format != "csv":
            where = f"row {first + 1}"
        elif first is not None and first in lines:
            where = f"line {lines[first]}"
        if kind == UNKNOWN_CODE:
            warning = unknown_codes_warning(file.path, column, counts, where=where)
        elif kind == OUT_OF_RANGE:
            warning = out_of_range_warning(file.path, column, counts, where=where)
        elif kind == NOT_WHOLE:
            warning = not_whole_warning(file.path, column, counts, where=where)
        else:
            warning = unreadable_numbers_warning(file.path, column, counts, where=where)
        warn(warning)


def numbers_read_as_null(connection: duckdb.DuckDBPyConnection, values: Iterable[str]) -> tuple[set[str], set[str]]:
    """The values of a numeric column that read as null though they are numbers: the whole ones beyond its type's
    range (a BIGINT's 99999999999999999999; a DOUBLE reads even 1e400, as inf), and those with a fraction in a
    BIGINT column (VendorID 2.5). Asked only of the values a warning names."""
    sql = (
        "SELECT v, n = floor(n) FROM (SELECT v, try_cast(v AS DOUBLE) AS n FROM unnest(?::VARCHAR[]) AS t(v)) "
        "WHERE NOT isnan(n)"
    )
    found = connection.execute(sql, [list(values)]).fetchall()
    return {value for value, whole in found if whole}, {value for value, whole in found if not whole}


def line_numbers(path: Path, positions: Iterable[int]) -> dict[int, int]:
    """The line (the header is line 1) of each data row at `positions` (0: the first row) of a CSV file, as an
    editor numbers them: the line a row starts on, a quoted field's line breaks counted (the typed reader reads
    such fields); blank lines between rows are no rows, as for DuckDB. One read of the file up to the last position
    asked (gzip or not); only a line holding a quote is looked into."""
    wanted = sorted(set(positions))
    lines: dict[int, int] = {}
    if not wanted:
        return lines
    with path.open("rb") as handle:
        gzipped = handle.read(2) == nyc_taxi.GZIP_MAGIC
    with gzip.open(path, "rb") if gzipped else path.open("rb") as raw:
        row = -1  # the header is no row
        quoted = False  # the line before ended inside a quoted field: this one continues its row
        for number, line in enumerate(raw, start=1):
            if quoted:
                quoted = ends_in_quotes(line, quoted)
                continue
            if number > 1 and not line.strip(b"\r\n"):
                continue
            if row == wanted[len(lines)]:
                lines[row] = number
                if len(lines) == len(wanted):
                    break
            row += 1
            quoted = QUOTE in line and ends_in_quotes(line, False)
    return lines


QUOTE = ord('"')
# the rest of a quoted field, to its closing quote ("" is a quote in it); possessive: a "" is never split
QUOTED_REST = re.compile(rb'(?:[^"]|"")*+"')


def ends_in_quotes(line: bytes, quoted: bool) -> bool:
    """Whether a CSV line (`quoted`: begun inside a quoted field) ends inside a quoted field, its line break part
    of the field, as DuckDB's reader and Python's csv read quotes: a quote opens a field only at its start (ab"c
    is text), "" inside is a quote, and text after the closing quote up to the comma is the field's."""
    at = 0
    while True:
        if quoted:
            closing = QUOTED_REST.match(line, at)
            if closing is None:
                return True
            at = closing.end()
        elif line.startswith(b'"', at):
            quoted, at = True, at + 1
            continue
        quoted = False
        comma = line.find(b",", at)
        if comma < 0:
            return False
        at = comma + 1


def _remove_stale_copies(folder: Path, kept: Sequence[Path]) -> None:
    """Remove the copies an earlier run staged and this one did not (`staged_name`'s, nothing else), and the
    `.partial` ones a killed run left: the folder is recorded with its data version as it is. A `.partial`
    written to in the last PARTIAL_ALIVE_S seconds may be another trial's copy in progress, and stays."""
    if not folder.is_dir():
        return
    alive = time.time() - PARTIAL_ALIVE_S
    for stale in set(folder.iterdir()) - set(kept):
        copy = STAGED_COPY.fullmatch(stale.name)
        if copy and stale.is_file() and (not copy.group("partial") or stale.stat().st_mtime < alive):
            stale.unlink()
    if not any(folder.iterdir()):
        folder.rmdir()


def typed_csv_reader(
    file: nyc_taxi.TripFile,
    aliases: dict[str, list[str]],
    codes: dict[str, dict[str, int]],
    connection: duckdb.DuckDBPyConnection,
) -> tuple[str, dict[str, str]] | None:
    """A strict reader of a CSV file that parses each of today's numeric columns as its declared type, and the
    columns it gives (name -> type); None when no column would be parsed as a number.

    It reads what the text reader (`nyc_taxi.reader_sql` and the casts of `TripQueries.trips`) reads, faster
    (about a third less CPU: no string per field), or fails: DuckDB parses a typed field with the cast the text
    path applies, an empty field reads as null as there, and every row must have the header's fields (strict,
    no padding: only empty surplus fields pass, as there). It fails on any value the text path would read as null
    (a bad number, text codes such as CASH) and on mixed line endings; its caller then reads the file as text,
    which also names the file and line of a row that does not parse. Timestamps stay text: TLC's files hold
    impossible ones (2019-13-01), which read as null. A column whose value codes include a number keeps text.
    """
    declared = {**nyc_taxi.COLUMNS, **nyc_taxi.COORDINATES}
    today = {name: column for column, names in nyc_taxi.match_columns(file.columns, aliases).items() for name in names}
    types = {}
    for name in file.columns:
        sql_type = declared.get(today.get(name, ""), "VARCHAR")
        coded = codes.get(today.get(name, ""), {})
        if sql_type in ("TIMESTAMP", "VARCHAR") or any(_is_number(connection, key, sql_type) for key in coded):
            sql_type = "VARCHAR"
        types[name] = sql_type
    if all(sql_type == "VARCHAR" for sql_type in types.values()):
        return None
    # DuckDB's reader rounds 2.5 in a BIGINT column to 3: those are read as DOUBLE, and the file read as text
    # (where such a value is null and warned about) unless each is a whole number a DOUBLE holds exactly
    whole = [name for name, sql_type in types.items() if sql_type == "BIGINT"]
    read = {name: "DOUBLE" if name in whole else sql_type for name, sql_type in types.items()}
    columns = ", ".join(f"{literal(name)}: {literal(sql_type)}" for name, sql_type in read.items())
    with file.path.open("rb") as handle:
        compression = "gzip" if handle.read(2) == nyc_taxi.GZIP_MAGIC else "none"
    relation = (
        f"read_csv({literal(str(file.path))}, header = true, auto_detect = false, columns = {{{columns}}}, "
        f"delim = ',', quote = '\"', escape = '\"', strict_mode = true, null_padding = false, nullstr = '', "
        f"compression = '{compression}')"
    )
    if whole:
        casts = ", ".join(f"CAST({quote(name)} AS BIGINT) AS {quote(name)}" for name in whole)
        odd = " OR ".join(
            f"NOT isfinite({quote(name)}) OR {quote(name)} <> floor({quote(name)}) OR abs({quote(name)}) >= {EXACT}"
            for name in whole
        )
        stop = f"error({literal(NOT_WHOLE_STOP + str(file.path))})"
        relation = f"(SELECT * REPLACE ({casts}) FROM {relation} WHERE CASE WHEN {odd} THEN {stop} ELSE true END)"
    return relation, types


def _is_number(connection: duckdb.DuckDBPyConnection, text: str, sql_type: str) -> bool:
    return connection.execute(f"SELECT try_cast(? AS {sql_type}) IS NOT NULL", [text.strip()]).fetchall()[0][0]


def _stage_typed(
    cfg: DictConfig,
    connection: duckdb.DuckDBPyConnection,
    file: nyc_taxi.TripFile,
    target: Path,
    unread: dict[str, Tally],
) -> int | None:
    """A CSV file staged through `typed_csv_reader`: its rows, or None when the file must be read as text.
    Text that reads as null is counted into `unread`: only in a coded column it keeps as text (one whose codes
    include a number), since a column it parses as a number refuses the file on text that is not one."""
    reader = typed_csv_reader(file, aliases(cfg), value_codes(cfg), connection)
    if reader is None:
        return None
    source = Source(reader[0], reader[1], file_month_sql(file.path))
    try:
        return write_parquet(
            connection,
            trip_queries(cfg, DUCKDB, source).staged(),
            target,
            None,
            compression=STAGED_COMPRESSION,
            unread=unread,
        )
    except OutputError:
        raise  # a full disk: the text reader would fail the same way, and blame the CSV
    except DataError:
        return None


def _rows_hold(rows: int) -> str:
    return f"{rows:,} rows hold" if rows != 1 else "1 row holds"


def _listed(counter: Counter[str], shown: int) -> str:
    """The values of `counter` with their rows, most first, at most `shown` of them."""
    common = counter.most_common()
    listed = ", ".join(f"{value!r} ({rows:,} row{'s' if rows != 1 else ''})" for value, rows in common[:shown])
    return listed + (f" and {len(common) - shown} more" if len(common) > shown else "")


def unknown_codes_warning(path: Path, column: str, counter: Counter[str], shown: int = 10, where: str = "") -> str:
    """One line naming a file's text values of `column` that no code maps, with their rows (most first) and
    `where` the first one is (`line 3`), if known."""
    first = f" (the first on {where})" if where else ""
    return (
        f"{path}: {column}: {_rows_hold(sum(counter.values()))} text that is no code in "
        f"preprocessing.value_codes.{column}, read as null{first}: {_listed(counter, shown)}; to keep them, add "
        f"+preprocessing.value_codes.{column}.<TEXT>=<code> (codes: docs/tasks/anomaly_detection.md)"
    )


def unreadable_numbers_warning(path: Path, column: str, counter: Counter[str], shown: int = 10, where: str = "") -> str:
    """One line naming a file's text values of numeric `column` that are not numbers, with their rows (most
    first) and `where` the first one is (`line 3`, `row 3`), if known; what happens to the rows, and the fix."""
    first = f" (the first on {where})" if where else ""
    return (
        f"{path}: {column}: {_rows_hold(sum(counter.values()))} text that is not a number, read as null{first}: "
        f"{_listed(counter, shown)}; the rows are kept, with {column} null (an enabled rule that uses {column} "
        "flags them as unevaluable); to read them, write the number in the file, or nothing where there is none"
    )


def out_of_range_warning(path: Path, column: str, counter: Counter[str], shown: int = 10, where: str = "") -> str:
    """One line naming a file's numbers in `column` beyond the range of its type, with their rows (most first) and
    `where` the first one is (`line 3`, `row 3`), if known; what happens to the rows, and the fix."""
    first = f" (the first on {where})" if where else ""
    sql_type = {**nyc_taxi.COLUMNS, **nyc_taxi.COORDINATES}.get(column, "")
    return (
        f"{path}: {column}: {_rows_hold(sum(counter.values()))} a number out of range for the column's type "
        f"({sql_type}{': ' + TYPE_RANGES[sql_type] if sql_type in TYPE_RANGES else ''}), read as null{first}: "
        + _numbers_kept(column, counter, shown)
    )


def not_whole_warning(path: Path, column: str, counter: Counter[str], shown: int = 10, where: str = "") -> str:
    """One line naming a file's numbers with a fraction in `column`, whose type holds whole numbers (a code, a
    location ID), with their rows (most first) and `where` the first one is, if known; what happens, and the fix."""
    first = f" (the first on {where})" if where else ""
    return (
        f"{path}: {column}: {_rows_hold(sum(counter.values()))} a number with a fraction where the column holds "
        f"whole numbers (codes and IDs, BIGINT), read as null rather than rounded{first}: "
        + _numbers_kept(column, counter, shown)
    )


def _numbers_kept(column: str, counter: Counter[str], shown: int) -> str:
    return (
        f"{_listed(counter, shown)}; the rows are kept, with {column} null (an enabled rule that uses {column} "
        "flags them as unevaluable); to read them, correct the number in the file, or write nothing where there "
        "is none"
    )


def _nothing(file: nyc_taxi.TripFile) -> str:
    return "only a header" if file.format == "csv" else "a Parquet file of 0 rows"


def _has_rows(connection: duckdb.DuckDBPyConnection, file: nyc_taxi.TripFile) -> bool:
    """Whether a file holds a row: a Parquet footer's row count, or one row read from a CSV."""
    if file.format == "parquet":
        return bool(pq.read_metadata(file.path).num_rows)
    try:
        return bool(connection.execute(f"SELECT 1 FROM {nyc_taxi.reader_sql(file)} LIMIT 1").fetchall())
    except duckdb.Error as error:
        raise DataError(nyc_taxi.read_error(error, file.path)) from error


# a staged copy (`staged_name`), or one being written
STAGED_COPY = re.compile(r"[0-9]{3,}_.+\.parquet(?P<partial>\.partial)?")
# a writer appends to its .partial without pause: one untouched this long was left by a killed run
PARTIAL_ALIVE_S = 600


def staged_name(number: int, path: Path) -> str:
    """A staged file's name: the source's without .csv/.gz, so the month in it (which pickup_outside_month
    reads: nyc.yellow.2019-01.csv) survives, numbered so that two sources never share one."""
    stem = re.sub(r"(\.csv)?(\.gz)?$", "", path.name, flags=re.IGNORECASE)
    name = f"{number:03d}_{stem}.parquet"
    if nyc_taxi.file_month(Path(name)) != nyc_taxi.file_month(path):
        raise DataError(f"{path}: the month in its name would be lost in the staged copy {name}; rename the file")
    return name


def write_manifest(cfg: DictConfig, content: dict[str, Any]) -> Path:
    folder = input_dir(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    for key in ("files", "sources"):
        content[key] = [_relative(Path(p), folder) for p in content.get(key, [])]
    (folder / MANIFEST).write_text(json.dumps({"engine": cfg.engine.name, **content}, indent=2) + "\n")
    return folder / MANIFEST


def _relative(path: Path, folder: Path) -> str:
    # inside input/ the manifest names files relative to itself, so a copied workspace (dvc exp) still works
    return str(path.relative_to(folder)) if path.is_relative_to(folder) else str(path)


def read_manifest(cfg: DictConfig) -> dict[str, Any]:
    path = input_dir(cfg) / MANIFEST
    if not path.exists():
        raise DataError(f"{path} is missing: run the prepare stage first (mlexp task={cfg.task.name} stage=prepare)")
    manifest: dict[str, Any] = json.loads(path.read_text())
    if manifest["engine"] != cfg.engine.name:
        raise DataError(f"prepare ran with engine={manifest['engine']}; run it again with engine={cfg.engine.name}")
    manifest["files"] = [input_dir(cfg) / p for p in manifest["files"]]
    return manifest


def open_engine(cfg: DictConfig) -> tuple[Engine, TripQueries]:
    """The trial's engine over the prepared trips, and the queries in its dialect (no rules yet)."""
    engine: Engine
    manifest = read_manifest(cfg)
    if cfg.engine.name == "athena":
        engine = AthenaEngine(cfg.engine)
    else:
        files = check_files(cfg, manifest["files"], [nyc_taxi.PICKUP, nyc_taxi.DROPOFF])
        compression = choice_text(cfg.engine.compression)
        engine = duckdb_engine(cfg, files, cfg.engine.memory_limit, cfg.engine.threads, compression)
    return engine, trip_queries(cfg, engine.dialect, engine.source())
