"""The fixtures the SageMaker training-job tests share: `aws`, `project` and the SDK imported once per module.

Import them beside the offline account they build on:
`from sagemaker_fixtures import job_aws, job_project_per_test, sdk_loaded_once  # noqa: F401` with
`from sagemaker_aws import sagemaker_aws  # noqa: F401`. The fixtures are named in their decorators, so a test's
`aws` or `project` argument shadows no import (ruff's F811).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sagemaker_aws import FakeAws
from sagemaker_jobs import job_project


@pytest.fixture(scope="module", autouse=True)
def sdk_loaded_once() -> None:
    """The SDK takes seconds to import: once per module, not in the first test's timing."""
    import sagemaker.train  # noqa: F401


@pytest.fixture(name="aws")
def job_aws(sagemaker_aws: FakeAws) -> FakeAws:
    return sagemaker_aws


@pytest.fixture(name="project")
def job_project_per_test(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project of its own per test (its registry starts empty), with no data or models folder yet."""
    return job_project(tmp_path / "project", monkeypatch)
