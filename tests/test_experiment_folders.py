"""An experiment's name, free text to MLflow, as the name of one folder under outputs/."""

from __future__ import annotations

from conftest import TINY, run_cli


def test_compare_draws_an_experiment_named_with_slashes_into_one_folder_inside_outputs(tmp_project_with_store):
    # its charts went to outputs/compare/team/../../abalone, that is outputs/abalone (and outputs/compare/team/)
    project = tmp_project_with_store
    name = "team/../../abalone"
    run_cli(project, "task=tabular_regression", f"tracking.experiment_name={name}", *TINY)
    done = run_cli(project, "compare", f"experiment={name}")
    folder = project / "outputs" / "compare" / "team_.._.._abalone"
    charts = sorted(folder.glob("*.png"))
    assert charts and f"charts: {', '.join(str(p) for p in charts)}" in done.stdout
    assert [p.name for p in (project / "outputs" / "compare").iterdir()] == [folder.name]
