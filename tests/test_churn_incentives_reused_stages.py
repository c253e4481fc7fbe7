"""A partial `dvc repro` of the churn pipeline: its trial links the stages DVC kept, before and after the stage that
ran, and compares with the full pipeline's trial; a stage DVC is made to run (`--force-downstream`) is not linked."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_cli, seed_store, store_client
from dvc_copy import copy_project, dvc
from test_reused_stages import by_start, metrics_of

CHURN = "pipelines/churn_incentives/dvc.yaml"
SIZES = {"churn_incentives": {"dataset.n_rows": 400, "model.num_round": 5}}  # its four stages: about 20 s


@pytest.fixture
def repo(tmp_path: Path, empty_store: Path) -> Path:
    repo = copy_project(tmp_path / "repo", SIZES)
    seed_store(repo, empty_store)
    return repo


def _curve(repo: Path, run_id: str, metric: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in store_client(repo).get_metric_history(run_id, metric))


@pytest.mark.slow
def test_a_partial_churn_run_links_the_stages_dvc_kept_before_and_after_it(repo):
    dvc(repo, "repro", CHURN)
    # the cutoff is read by evaluate only: DVC keeps prepare and train before it, and incentives after it
    changed = dvc(repo, "exp", "run", "-S", "churn_incentives.model.decision_threshold=0.4", CHURN)
    assert "dvc.yaml:incentives' didn't change, skipping" in changed.stdout
    full, partial = by_start(repo, "churn_incentives")
    assert partial.component_names == {"Evaluation"}
    assert partial.params["model.decision_threshold"] == "0.4"
    assert partial.params["dataset.path"] == full.params["dataset.path"] == "data/raw/churn.txt"

    links = {stage: partial.tags.get(f"mlexp.shared_component.{stage}") for stage in ("prepare", "train", "incentives")}
    assert links == {
        "prepare": full.components["Pre-processing"],
        "train": full.components["Training"],
        "incentives": full.components["Incentive analysis"],
    }
    assert "mlexp.shared_component.evaluate" not in partial.tags  # it ran in this trial
    assert partial.tags["mlexp.reused.train"] == (
        f"kept by DVC: the outputs of Training {links['train']} (trial {full.name} {full.run_id})"
    )
    # the trial's row holds what only the kept stages record, as their components recorded it
    for stage in ("Pre-processing", "Training", "Incentive analysis"):
        for name, value in metrics_of(repo, full.components[stage]).items():
            assert partial.metrics[name] == pytest.approx(value), name
    assert set(full.metrics) <= set(partial.metrics)
    curve = {t.name: _curve(repo, t.run_id, "val_auc") for t in (full, partial)}  # AUC per round, not its last value
    assert curve[partial.name] == curve[full.name] and len(curve[full.name]) == 5

    table = run_cli(repo, "compare", "task=churn_incentives").stdout.splitlines()
    header = next(line.split() for line in table if line.startswith("#"))
    rows = {line.split()[1]: line.split() for line in table if line[:1].isdigit()}
    for column in ("val_auc", "auc", "test_cost"):
        figures = {rows[trial.name][header.index(column)] for trial in (full, partial)}
        assert len(figures) == 1, (column, table)  # the partial trial's figures are the full trial's, not blank

    # --force-downstream: DVC runs incentives although it did not change, so evaluate does not link it
    dvc(repo, "exp", "run", "--force-downstream", "-S", "churn_incentives.model.decision_threshold=0.3", CHURN)
    forced = by_start(repo, "churn_incentives")[-1]
    assert forced.component_names == {"Evaluation", "Incentive analysis"}
    assert not {"mlexp.shared_component.incentives", "mlexp.reused.incentives"} & set(forced.tags)
    assert forced.tags["mlexp.shared_component.train"] == full.components["Training"]
    own = metrics_of(repo, forced.components["Incentive analysis"])
    assert forced.metrics["test_cost"] == pytest.approx(own["test_cost"])
