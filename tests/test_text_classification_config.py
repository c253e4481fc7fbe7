"""What text_classification makes of its config alone: settings it used to ignore in silence (a holdout file beside
the packaged corpus, an n-gram range written the wrong way round) refused in one line before the trial opens, and
its two sweeps running their trials in parallel when sweep.max_parallel_jobs asks for it."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from conftest import TEXT_TINY, cli_env, one_line_error, run_cli, trials_of
from mlexp.config import make_composable
from mlexp.sweeps import workers
from mlexp.tasks.text_classification.config_rules import ranges_in_order

TASK = "text_classification"
SWEEPS = ("text_classification_models", "text_classification_active_learning")


@pytest.mark.parametrize("exists", [False, True], ids=["missing", "an AG News test file"])
def test_a_holdout_file_without_its_corpus_is_refused_before_the_trial(tmp_project, exists):
    """With dataset.path null the trial trained and scored on the packaged corpus' own test posts, whatever file
    dataset.holdout_path named (even none): the file the user meant to score on was never read."""
    holdout = tmp_project / "test.csv"
    if exists:
        holdout.write_text('3,"Stocks rally","Shares rose on Friday."\n')
    assert one_line_error(tmp_project, f"task={TASK}", f"dataset.holdout_path={holdout}", *TEXT_TINY) == (
        f"dataset.path=null, dataset.holdout_path={holdout}: dataset.holdout_path is read only with dataset.path: "
        "the packaged 20 Newsgroups corpus (dataset.path null) holds out its own test posts; give dataset.path the "
        "training CSV the holdout belongs to (AG News' train.csv beside its test.csv), or leave "
        "dataset.holdout_path unset"
    )


@pytest.mark.parametrize(
    ("overrides", "shown", "meant"),
    [
        (["model.word_ngrams=[2,1]"], "model.word_ngrams=[2, 1], model.char_ngrams=[2, 4]", "model.word_ngrams=[1,2]"),
        (["model.char_ngrams=[4,2]"], "model.word_ngrams=[1, 2], model.char_ngrams=[4, 2]", "model.char_ngrams=[2,4]"),
        # the other block off: the reversal is the fix to name, not "the model needs features"
        (
            ["model=tfidf_naive_bayes", "model.word_ngrams=[3,1]"],
            "model.word_ngrams=[3, 1], model.char_ngrams=[0, 0]",
            "model.word_ngrams=[1,3]",
        ),
    ],
)
def test_a_reversed_ngram_range_is_refused_not_read_as_off(tmp_project, overrides, shown, meant):
    """[2,1] trained the model without word n-grams, as [0,0] does (the featuriser finds no n-gram of a length from 2
    up to 1), and [4,2] without the character n-grams of every word but the shortest: typos that changed the model
    in silence."""
    assert one_line_error(tmp_project, f"task={TASK}", *overrides, *TEXT_TINY) == (
        f"{shown}: an n-gram range is [shortest, longest], shortest not above longest; did you mean {meant}? ([0,0] "
        "turns a block off)"
    )
    assert ranges_in_order([0, 0], [2, 4]) and ranges_in_order([1, 2], [0, 0])  # [0, 0] still turns a block off


def test_a_sweep_over_a_reversed_ngram_range_gets_the_swap_before_it_opens(tmp_project):
    """The hint reaches every reversed range the bounds let through ([3,1] here); only one with an end past them
    ([4,3]) is refused by the bound first, whose swap would be refused too."""
    assert one_line_error(tmp_project, "-m", f"task={TASK}", "model.word_ngrams=[1,2],[3,1]", *TEXT_TINY) == (
        "the sweep would run model.word_ngrams=[3, 1], model.char_ngrams=[2, 4] (from model.word_ngrams=[1,2],[3,1]): "
        "an n-gram range is [shortest, longest], shortest not above longest; did you mean model.word_ngrams=[1,3]? "
        "([0,0] turns a block off)"
    )
    assert one_line_error(tmp_project, f"task={TASK}", "model.word_ngrams=[4,3]", *TEXT_TINY) == (
        "model.word_ngrams.0=4 is out of range: it must be between 0 and 3"
    )


@pytest.mark.parametrize("sweep", SWEEPS)
def test_the_task_sweeps_launch_as_many_trials_at_once_as_asked(tmp_project, monkeypatch, sweep):
    """Both ran their trials one at a time whatever sweep.max_parallel_jobs said (Hydra's basic launcher)."""
    monkeypatch.setenv("MLEXP_ROOT", str(tmp_project))
    make_composable()
    with initialize_config_dir(config_dir=str(tmp_project / "conf"), version_base=None):
        for asked in (1, 2):
            overrides = [f"task={TASK}", f"sweep={sweep}", f"sweep.max_parallel_jobs={asked}"]
            config = compose("config", overrides=overrides, return_hydra_config=True)
            assert workers.parallel_jobs(config) == asked, overrides


@pytest.mark.usefixtures("tmp_project_with_store")  # the store's first set-up is other tests' concern
def test_a_parallel_model_sweep_runs_its_trials_in_worker_processes(tmp_project):
    """The README's model sweep, tiny, two at a time: Hydra's record of the launch names the joblib launcher with two
    workers, and each trial fitted on a worker's share of the cores (one trial alone takes them all)."""
    env = {k: v for k, v in cli_env(tmp_project).items() if k not in workers.THREAD_VARIABLES}
    run_cli(tmp_project, "-m", f"task={TASK}", "sweep=text_classification_models", "sweep.max_parallel_jobs=2",
            *TEXT_TINY, env=env)  # fmt: skip
    trials = trials_of(tmp_project, experiment=TASK)
    assert sorted(t.tags["mlexp.choice.model"] for t in trials) == ["tfidf_linear", "tfidf_naive_bayes"]
    assert all(t.status == "FINISHED" for t in trials)
    [launched] = tmp_project.glob(f"outputs/multirun/{TASK}/*/multirun.yaml")
    launcher = OmegaConf.load(launched).hydra.launcher
    assert launcher._target_.endswith("ResilientJoblibLauncher") and launcher.n_jobs == 2
    assert {t.metrics["fit_threads"] for t in trials} == {max(1, workers.cores() // 2)}
