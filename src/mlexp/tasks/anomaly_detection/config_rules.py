"""The rules across anomaly_detection's config keys (the task's `constraints`), and the predicate its engines check
again (rules.py holds the SQL outlier rules, another matter).

Their own module, not the package's `__init__`: a stage's DVC dependencies are the modules it imports, and a range or
a help text edited in `__init__` must not re-run the stages.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mlexp.aws_setup import REGION, AwsCredentials, credentials_found
from mlexp.config.constraints import Constraint, shown_value
from mlexp.errors import GIVE_CREDENTIALS, did_you_mean
from mlexp.tasks.anomaly_detection.athena_settings import ATHENA_NO_CREDENTIALS, athena_results_located
from mlexp.tasks.anomaly_detection.dialects import DATE_PARSE, date_parse_lacks
from mlexp.tasks.anomaly_detection.rules import BUILT_IN, enabled_problem, enabled_rules

# the shipped rules' texts: they bind, so no trial of them imports DuckDB before it opens
SHIPPED = frozenset(BUILT_IN.values())


@dataclass(frozen=True)
class ShownByRule(Constraint):
    """A Constraint on the whole model whose refusal shows the rule that cannot run, as the command line writes it
    (model.rules.bad="trip_distanc > 1"), and otherwise model.enabled."""

    def shown(self, values: Sequence[Any]) -> str:
        model = values[0]
        found = rule_problem(*values)
        if found is None:
            return f"model.enabled={shown_value(model.get('enabled'))}"
        text = str(model["rules"][found[0]])
        return f"model.rules.{found[0]}=" + (f"'{text}'" if '"' in text else f'"{text}"')


def rows_for_anomalies(n_rows: int, anomalies: dict[str, float]) -> int:
    """The generated rows the anomalies take: each kind asked for takes its share, and at least one row.

    The arithmetic of mlexp.data.nyc_taxi_synthetic's generator, which refuses a month they do not fit.
    """
    return sum(max(1, round(share * n_rows)) for share in anomalies.values() if share > 0)


def anomalies_fit(path: str | None, n_rows: int, anomalies: dict[str, float]) -> bool:
    """Whether a generated month (dataset.path null) has the rows its anomalies take."""
    return path is not None or rows_for_anomalies(n_rows, anomalies) <= n_rows


def unknown_rules(enabled: list[str], rules: dict[str, str]) -> list[str]:
    """The names in model.enabled that model.rules lacks, each once, in their order."""
    return [name for name in dict.fromkeys(enabled) if name not in rules]


def rules_exist(enabled: list[str], rules: dict[str, str]) -> bool:
    """Whether every rule model.enabled names is one of model.rules."""
    return not unknown_rules(enabled, rules)


def name_the_rules(enabled: list[str], rules: dict[str, str]) -> str:
    """The unknown names, each with the rule its spelling is closest to, then the rules there are."""
    names = list(rules)
    unknown = ", ".join(
        f"{name!r}{f' ({hint.strip()})' if (hint := did_you_mean(str(name), names)) else ''}"
        for name in unknown_rules(enabled, rules)
    )
    return (
        f"model.rules has no {unknown}; rules: {', '.join(names)} (add a new one with "
        "'+model.rules.<name>=\"<SQL predicate>\"', quoted so)"
    )


def rule_problem(model: dict[str, Any], engine: str, path: str | None) -> tuple[str, str] | None:
    """The first rule of model.enabled that cannot run, and what keeps it: its name or a {placeholder}
    (rules.rule_problem), or on DuckDB its SQL, bound as the detect stage binds it (binding.problem) for each rule
    whose text is not a shipped one: only then is DuckDB imported, once per text. None also for a name model.rules
    lacks (the rule above names those). Athena's SQL is Trino's: its stages find its mistakes."""
    if not rules_exist(model["enabled"], model["rules"]):
        return None
    found = enabled_problem(model)
    if found is not None or engine != "duckdb":
        return found
    for rule in enabled_rules(model):
        if rule.template not in SHIPPED:
            from mlexp.tasks.anomaly_detection import binding

            if (problem := binding.problem(rule.predicate, generated=path is None)) is not None:
                return rule.name, problem
    return None


def rules_run(model: dict[str, Any], engine: str, path: str | None) -> bool:
    """Whether every rule of model.enabled can run (rule_problem)."""
    return rule_problem(model, engine, path) is None


def athena_has_credentials(engine: str) -> bool:
    """Whether engine=athena finds AWS credentials (aws_setup.credentials_found: offline); other engines need none."""
    return engine != "athena" or credentials_found()


def directives_athena_lacks(timestamp_formats: list[str]) -> str:
    """The directives Athena's date_parse lacks, each with its format: "%j (in '%Y-%j')"."""
    lacking = ((fmt, date_parse_lacks(fmt)) for fmt in timestamp_formats)
    return ", ".join(f"{', '.join(lacks)} (in {fmt!r})" for fmt, lacks in lacking if lacks)


def athena_reads_formats(engine: str, timestamp_formats: list[str]) -> bool:
    """Whether Athena's date_parse can read every format (DuckDB's strptime reads all)."""
    return engine != "athena" or not any(date_parse_lacks(fmt) for fmt in timestamp_formats)


CONSTRAINTS = (
    Constraint(
        ("model.enabled", "model.rules"),
        rules_exist,
        "each name in model.enabled (the rules that run) must be one of model.rules",
        name_the_rules,
        # eleven SQL predicates would fill the line: the fix names the rules there are
        context=("model.rules",),
    ),
    ShownByRule(
        ("model", "engine.name", "dataset.path"),
        rules_run,
        "each rule in model.enabled must run: a name of letters, digits and _ (not unevaluable), {placeholders} "
        "naming numeric model values, and with engine=duckdb SQL that binds over the columns of a trip, its "
        "durations and the statistics",
        lambda model, engine, path: (rule_problem(model, engine, path) or ("", ""))[1],
    ),
    Constraint(
        ("dataset.path", "dataset.n_rows", "dataset.anomalies"),
        anomalies_fit,
        "a generated month (dataset.path null) must have dataset.n_rows for its anomalies: each kind with a share "
        "above 0 takes its share of the rows, and at least one",
        lambda path, n_rows, anomalies: (
            f"at {n_rows} rows they take {rows_for_anomalies(n_rows, anomalies)}: raise dataset.n_rows, or lower "
            "shares of dataset.anomalies (0: none of that kind)"
        ),
    ),
    Constraint(
        ("engine.s3_staging_dir", "engine.work_group"),
        athena_results_located,
        "engine=athena writes query results to engine.s3_staging_dir or to engine.work_group's result location",
        "give engine.s3_staging_dir=s3://<bucket>/<prefix>/ or engine.work_group=<a workgroup with a result location>",
    ),
    Constraint(
        ("engine.name", "preprocessing.timestamp_formats"),
        athena_reads_formats,
        "with engine=athena each of preprocessing.timestamp_formats (the formats tried on text timestamp columns, "
        "after ISO 8601) is read by Athena's date_parse, which has no equivalent for some strptime directives",
        lambda _, timestamp_formats: (
            f"date_parse has no {directives_athena_lacks(timestamp_formats)}: use only {' '.join(DATE_PARSE)}"
        ),
    ),
    REGION,
    AwsCredentials(
        ("engine.name",),
        athena_has_credentials,
        "engine=athena sends its queries with the AWS credentials botocore finds (environment, ~/.aws, an SSO "
        "login, a container's or an instance's role)",
        f"{GIVE_CREDENTIALS}, or use engine=duckdb",
        ATHENA_NO_CREDENTIALS,
    ),
)
