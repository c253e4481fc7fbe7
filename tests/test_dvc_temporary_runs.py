"""A DVC experiment run in a temporary copy of the project (`dvc exp run --temp`, queued experiments) keeps its
trial, and a killed trial's journal, in the project it copies: the copy is deleted when the experiment ends.
The whole path (`dvc exp run --temp`) runs in test_params_and_dvc.py."""

from __future__ import annotations

from pathlib import Path

from mlexp.paths import store_home
from mlexp.tracking.journal import journals_root
from mlexp.tracking.store import TrackingStore


def _project(folder: Path) -> Path:
    (folder / "conf").mkdir(parents=True)
    (folder / "conf" / "config.yaml").write_text("defaults: []\n")
    return folder


def test_a_temporary_copys_store_and_journal_are_the_projects(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    project = _project(tmp_path / "project")
    for copy in ("tmpab12", "standalone/tmpcd34"):  # queued, and --temp
        root = _project(project / ".dvc" / "tmp" / "exps" / copy)
        assert store_home(root) == project
        store = TrackingStore.resolve(None, root)
        assert store.uri == f"sqlite:///{project / 'mlflow.db'}"
        assert store.artifact_root == (project / "mlartifacts").as_uri()
        assert TrackingStore.resolve("sqlite:///stores/team.db", root).uri == f"sqlite:///{project / 'stores/team.db'}"
        assert journals_root(root) == project / ".mlexp" / "journal"


def test_a_project_in_a_folder_of_the_repository_is_found_in_its_copy(tmp_path):
    # the copy is of the git repository; the project is its ml/ folder
    repository = tmp_path / "repository"
    project = _project(repository / "ml")
    (repository / ".dvc").mkdir()
    assert store_home(_project(repository / ".dvc" / "tmp" / "exps" / "tmpab12" / "ml")) == project
    # a DVC root in a folder of the repository (`dvc init --subdir`): the copy is still the whole repository's
    pipelines = repository / "pipelines"
    (pipelines / ".dvc").mkdir(parents=True)
    assert store_home(_project(pipelines / ".dvc" / "tmp" / "exps" / "standalone" / "tmpcd34" / "ml")) == project


def test_a_project_elsewhere_keeps_its_own_store(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    project = _project(tmp_path / "project")
    assert store_home(project) == project
    assert TrackingStore.resolve(None, project).uri == f"sqlite:///{project / 'mlflow.db'}"
    # a folder named like DVC's that is not inside a project (no conf/config.yaml above it) is a project of its own
    lone = _project(tmp_path / "elsewhere" / ".dvc" / "tmp" / "exps" / "tmpef56")
    assert store_home(lone) == lone and journals_root(lone) == lone / ".mlexp" / "journal"


def test_an_exported_mlexp_root_is_the_project_except_in_dvcs_temporary_copy_of_it(tmp_path, monkeypatch):
    from mlexp.paths import project_root

    project = _project(tmp_path / "project")
    copy = _project(project / ".dvc" / "tmp" / "exps" / "standalone" / "tmpab12")
    other = _project(tmp_path / "other")
    monkeypatch.setenv("DVC_STAGE", "pipelines/tabular_regression/dvc.yaml:train")
    monkeypatch.setenv("MLEXP_ROOT", str(project))
    # `dvc exp run --temp` with the workspace exported: the copy's params.yaml and outputs are the experiment's
    assert project_root(copy / "pipelines") == copy
    # a root named on purpose (mlexp.run(root=…) in a stage of another project, `MLEXP_ROOT=… mlexp` as its
    # command) stays the project, inside a DVC stage too
    monkeypatch.setenv("MLEXP_ROOT", str(other))
    assert project_root(copy) == other
    assert project_root(project) == other
