"""`python -m mlexp.tasks.recommendation.metadata_selection`'s command line: a mistake is one line, never a traceback,
and never silently ignored."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from mlexp.tasks.recommendation import metadata_selection


def _one_line(capsys: pytest.CaptureFixture[str], code: int, expected: int) -> str:
    """The whole stderr of a refused command line: one `mlexp: error:` line, the exit code expected, no table."""
    out, err = capsys.readouterr()
    assert code == expected and not out, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlexp: error: "), err
    return lines[0].removeprefix("mlexp: error: ")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        # a misspelt option names itself, the option meant and every valid one (not the whole --help text)
        (["sweeps=x"], "sweeps= is not an option; did you mean sweep? the options are sweep=, experiment=, baseline="),
        # a typo beside a valid sweep was silently ignored: the default baseline was used instead
        (["sweep=s", "baselin=signal_users"], "baselin= is not an option; did you mean baseline? the options are"),
        (["sweep=s", "metrics=recall_at_10"], "metrics= is not an option; did you mean metric? the options are"),
        (["nonsense"], "'nonsense' is not an option; the options are sweep=, experiment="),
        (["sweep"], "sweep= needs a value: sweep=<the sweep's name or id>"),
        (["baseline=signal_users"], "name the trials: sweep=<name> or experiment=<name>; usage: python -m "),
    ],
)
def test_an_option_it_does_not_take_is_one_line_naming_it_exit_2(capsys, argv, expected):
    message = _one_line(capsys, metadata_selection.main(argv), 2)
    assert message.startswith(expected), message


@pytest.fixture
def project_env(tmp_project_with_store: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The command's environment in a project whose store holds no sweep and no recommendation experiment."""
    for name in [n for n in os.environ if n.startswith(("MLFLOW_", "MLEXP_"))]:  # as cli_env: the project's store
        monkeypatch.delenv(name)
    monkeypatch.setenv("MLEXP_ROOT", str(tmp_project_with_store))
    monkeypatch.chdir(tmp_project_with_store)
    return tmp_project_with_store


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["sweep=nosuch"], "no sweep named or with id 'nosuch' in "),
        (["experiment=nope"], "no trials in experiment 'nope' of "),
    ],
)
def test_a_sweep_or_experiment_the_store_does_not_hold_is_one_line(project_env, capsys, argv, expected):
    message = _one_line(capsys, metadata_selection.main(argv), 1)
    assert message.startswith(expected) and "the store holds" in message, message


def test_trials_of_another_task_are_refused_by_name_not_a_key_error():
    """A sweep of another task has no features.name parameter: a SelectionError (one line), not a KeyError."""
    frame = pd.DataFrame({"Status": ["FINISHED"], "seed": ["1"], "model.learner": ["sgd"]})
    with pytest.raises(metadata_selection.SelectionError, match="not trials of task=recommendation"):
        metadata_selection.from_analytics(frame)
