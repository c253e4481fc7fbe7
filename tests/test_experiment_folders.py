"""An experiment's name, free text to MLflow, as the name of one folder under outputs/."""

from __future__ import annotations

import re

from conftest import TINY, run_cli
from mlexp.paths import experiment_folder


def test_compare_draws_an_experiment_named_with_slashes_into_one_folder_inside_outputs(tmp_project_with_store):
    # its charts went to outputs/compare/team/../../abalone, that is outputs/abalone (and outputs/compare/team/)
    project = tmp_project_with_store
    name = "team/../../abalone"
    run_cli(project, "task=tabular_regression", f"tracking.experiment_name={name}", *TINY)
    done = run_cli(project, "compare", f"experiment={name}")
    folder = project / "outputs" / "compare" / experiment_folder(name)
    charts = sorted(folder.glob("*.png"))
    assert charts and f"charts: {', '.join(str(p) for p in charts)}" in done.stdout
    assert [p.name for p in (project / "outputs" / "compare").iterdir()] == [folder.name]
    assert folder.name.startswith("team_.._.._abalone-")
    # and its artifacts: they went to <project>/abalone/, outside the store's artifact folder
    assert not (project / "abalone").exists()
    assert (project / "mlartifacts" / experiment_folder(name)).is_dir()


def test_an_experiment_named_with_encoded_slashes_keeps_its_artifacts_in_one_folder(tmp_project_with_store):
    # MLflow decodes %XX in the artifact location: team%2F..%2F..%2Fabalone wrote to <project>/abalone, and `..`
    # encoded put the artifacts in the project itself, which `mlexp delete` then removed whole
    project = tmp_project_with_store
    for name in ("team%2F..%2F..%2Fabalone", "%2e%2e", "exp #3"):
        run_cli(project, "task=tabular_regression", f"tracking.experiment_name='{name}'", *TINY)
        assert (project / "mlartifacts" / experiment_folder(name)).is_dir(), name
    assert not (project / "abalone").exists()
    assert not [p for p in project.iterdir() if re.fullmatch(r"[0-9a-f]{32}", p.name)]  # runs' folders in the project
    assert sorted(p.name for p in (project / "mlartifacts").iterdir()) == sorted(
        ["team%2F..%2F..%2Fabalone", "%2e%2e", "exp #3"]
    )


def test_delete_leaves_artifacts_outside_the_stores_artifact_folder(tmp_project_with_store):
    # an experiment made before the names were encoded (or by hand) may name the project itself as its folder
    from mlflow.tracking import MlflowClient

    project = tmp_project_with_store
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    client.create_experiment("old", artifact_location=project.as_uri())
    done = run_cli(project, "delete", "experiment=old", "--force")
    assert (project / "conf").is_dir() and (project / "mlflow.db").is_file()
    assert f"{project.as_uri()} (outside the store's artifact folder {project / 'mlartifacts'}: left as it is)" in (
        done.stdout
    )
    assert client.get_experiment_by_name("old") is None  # the experiment itself is gone


def test_two_experiments_whose_names_differ_in_a_slash_keep_their_own_charts(tmp_project_with_store):
    # team/a and team_a were both drawn into outputs/compare/team_a/, each compare deleting the other's charts first
    project = tmp_project_with_store
    for name in ("team/a", "team_a"):
        run_cli(project, "task=tabular_regression", f"tracking.experiment_name={name}", *TINY)
        run_cli(project, "compare", f"experiment={name}")
    folders = sorted((project / "outputs" / "compare").iterdir())
    assert len(folders) == 2 and all(sorted(f.glob("*.png")) for f in folders)
    assert project / "outputs" / "compare" / "team_a" in folders


def test_a_name_that_is_one_folder_is_kept_as_it_is():
    # "Abalone regression" had moved to Abalone_regression/, "Régression" to R_gression/
    for name in ("Abalone regression", "Régression", "team:a@b", "v1.2", "a..b"):
        assert experiment_folder(name) == name


def test_names_no_folder_can_hold_are_distinct_folder_safe_names():
    names = ["team/a", "team\\a", ".", "..", ".hidden", "a\0b", "/", "x" * 300, "x" * 301]
    folders = [experiment_folder(name) for name in names]
    assert len(set(folders)) == len(names)
    for folder in folders:
        assert folder and not folder.startswith(".") and not set(folder) & {"/", "\\", "\0"}
        assert len(folder.encode()) <= 255
    assert experiment_folder("team/a") == experiment_folder("team/a")  # stable: the same name finds its folder again
