"""The table-structure sweep ranks its trials by the table figure its settings change, not by extraction_score (which
holds no cell accuracy: its four trials tied there, and the "best" read cells at 0.6 against 1.0)."""

from __future__ import annotations

import yaml
from hydra import compose, initialize_config_dir

from conftest import REPO
from mlexp.config import make_composable
from mlexp.tasks.document_extraction.config import TableStructure

SWEEP = "document_extraction_tables"


def _composed(*overrides: str):
    make_composable()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose("config", overrides=["task=document_extraction", *overrides])


def test_the_table_sweep_ranks_by_cell_accuracy_and_every_other_run_by_extraction_score():
    cfg = _composed(f"sweep={SWEEP}")
    assert cfg.task.objective.metric == "table_cell_accuracy"
    assert cfg.task.objective.direction.value == "maximize"
    assert "table_cell_accuracy" in cfg.task.headline_metrics and "extraction_score" in cfg.task.headline_metrics
    for overrides in ([], ["sweep=grid"], ["sweep=tpe"]):
        assert _composed(*overrides).task.objective.metric == "extraction_score", overrides


def test_the_table_sweep_varies_the_table_settings_only():
    sweep = yaml.safe_load((REPO / "conf" / "sweep" / f"{SWEEP}.yaml").read_text())
    params = sweep["hydra"]["sweeper"]["params"]
    assert params == {"engine.table_structure": "whitespace,slanet_plus", "model.drop_sparse_columns": "true,false"}
    assert set(params["engine.table_structure"].split(",")) == {choice.value for choice in TableStructure}
