"""A model saved before the Unicode normaliser (text_classifier.json without "normaliser") still reads text as it was
trained to, and as a champion it is not re-scored on a holdout chosen by another normalisation."""

from __future__ import annotations

import json
import shutil

import numpy as np

from conftest import TEXT_TINY, run_cli, store_client, trials_of
from mlexp.tasks.text_classification.classifier import ABOUT_FILE, TextClassifier, normalize_ascii
from text_classification_service_setup import shared_model

TASK = "text_classification"
TEXTS = ["Le café de Zürich vend des écrans Nvidia", "Über die Wahl: Präsident und Minister", "Naïve goalie's défense"]


def _without_the_field(about_file) -> None:
    about = json.loads(about_file.read_text())
    about.pop("normaliser")
    about_file.write_text(json.dumps(about, indent=2) + "\n")


def test_a_model_saved_without_the_normaliser_reads_accented_text_as_before(tmp_path_factory, tmp_path):
    current = shared_model(tmp_path_factory)
    old_folder = shutil.copytree(current, tmp_path / "old")
    _without_the_field(old_folder / ABOUT_FILE)
    old = TextClassifier.load(old_folder)
    as_trained = [normalize_ascii(t) for t in TEXTS]  # "le caf de z rich vend des crans nvidia"
    assert np.array_equal(old.predict_proba(TEXTS), old.predict_proba(as_trained))
    assert [old.predict_one(t) for t in TEXTS] == [old.predict_one(t) for t in as_trained]
    # the installed normaliser reads these texts otherwise ("café", "zürich"): what the old model must not see
    assert not np.allclose(TextClassifier.load(current).predict_proba(TEXTS), old.predict_proba(as_trained))


def test_a_champion_saved_without_the_normaliser_is_not_rescored_on_this_holdout(tmp_project):
    run_cli(tmp_project, f"task={TASK}", *TEXT_TINY, "deploy=registry")
    saved = sorted((tmp_project / "mlartifacts").rglob(ABOUT_FILE))
    assert saved
    for about_file in saved:  # every copy: the train component's and the registered model's
        _without_the_field(about_file)
    second = run_cli(tmp_project, f"task={TASK}", *TEXT_TINY, "seed=7", "deploy=registry")
    assert (
        "selection: champion text_classification v1 normalised text differently (normaliser 1, this model 2), so its "
        "holdout differs and it is not re-scored on this one; the registry compares the figures each was registered "
        "with"
    ) in second.stdout.splitlines()
    trials = trials_of(tmp_project, experiment=TASK)
    assert len(trials) == 2 and all("champion_holdout_macro_f1" not in t.metrics for t in trials)
    assert len(store_client(tmp_project).search_model_versions(f"name='{TASK}'")) == 2
