from __future__ import annotations

import pytest

from mlexp import tasks
from mlexp.errors import ConfigError


def test_every_task_has_a_conf_file_and_its_stages():
    from conftest import REPO

    for name, task in tasks.load_all().items():
        assert (REPO / "conf" / "task" / f"{name}.yaml").exists()
        for stage in task.stages:
            assert callable(task.stage(stage))


def test_unknown_task_names_the_registered_ones():
    with pytest.raises(ConfigError, match="choose one of: .*tabular_regression"):
        tasks.get("tabular_regressoin")


def test_a_name_cannot_be_registered_twice():
    with pytest.raises(ValueError, match="registered twice"):
        tasks.register(tasks.Task("tabular_regression", "mlexp.tasks.tabular_regression.stages", ("prepare",)))


def test_deploy_registry_is_refused_for_a_task_without_a_model_to_register():
    tasks.get("tabular_regression").check_registrable()
    with pytest.raises(ConfigError, match="task 'anomaly_detection' has no predictive model to register .*deploy=none"):
        tasks.get("anomaly_detection").check_registrable()
