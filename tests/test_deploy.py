"""deploy=registry: successful trials register a version; the alias goes to the best; failures never."""

from __future__ import annotations

from conftest import run_cli, store_client, trials_of


def test_registry_promotes_only_better_models_and_never_failed_ones(tmp_project):
    common = ("task=tabular_regression", "deploy=registry", "dataset.n_rows=300")
    run_cli(tmp_project, *common, "model.epochs=6")
    run_cli(tmp_project, *common, "model.epochs=1")
    bad = tmp_project / "bad.data"
    bad.write_text("M,1,2,3\n")
    assert run_cli(tmp_project, *common, f"dataset.path={bad}", check=False).returncode == 1

    client = store_client(tmp_project)
    versions = client.search_model_versions("name='tabular_regression'")
    assert len(versions) == 2  # the failed trial registered nothing
    trials = {t.params["model.epochs"]: t for t in trials_of(tmp_project) if t.status == "FINISHED"}
    assert trials["6"].metrics["test_msle"] < trials["1"].metrics["test_msle"]
    champion = client.get_model_version_by_alias("tabular_regression", "champion")
    assert champion.run_id == trials["6"].components["Deployment"]
    assert {"Pre-processing", "Training", "Evaluation", "Deployment"} == trials["6"].component_names
    files = {a.path for a in client.list_artifacts(champion.run_id, "model")}
    assert files == {"model/model.json", "model/model.params"}
