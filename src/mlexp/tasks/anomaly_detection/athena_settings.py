"""What engine=athena needs before it sends a query, checked before the trial (config_rules) and again by the engine
(athena_engine): a place for the query results, and AWS credentials.

Their own module: config_rules binds the rules in the detect stage's query, so an engine importing it would make
every stage's code, the prepare stage's too, reach the detection SQL (a stage's DVC dependencies are the modules
it imports).
"""

from __future__ import annotations

from mlexp.errors import no_credentials

# the line AthenaEngine gives, when the credentials vanished after config_rules' check
ATHENA_NO_CREDENTIALS = no_credentials("engine=athena", without_aws="engine=duckdb")


def athena_results_located(s3_staging_dir: str | None, work_group: str | None) -> bool:
    """Whether Athena has somewhere to write query results: the staging folder, or the workgroup's location."""
    return bool(s3_staging_dir or work_group)
