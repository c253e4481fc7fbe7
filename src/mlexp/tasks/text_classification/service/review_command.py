"""`mlexp review ...`: reviewer accounts, the JSONL export for retraining, Label Studio export and import.

Also runnable as `python -m mlexp.tasks.text_classification.service <command> ...`.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mlexp.errors import ConfigError, DataError, MlexpError
from mlexp.paths import check_output_file, command_line_path, project_root, resolve
from mlexp.tasks.text_classification.service import label_studio
from mlexp.tasks.text_classification.service.database import is_postgres
from mlexp.tasks.text_classification.service.reviewers import add_reviewer, remove_reviewer
from mlexp.tasks.text_classification.service.store import FeedbackStore, export_reviews

PASSWORD_ENV = "MLEXP_REVIEWER_PASSWORD"
DEFAULT_STORE = "serving/text_classification_feedback.sqlite"
# the folder the task's prepare stage reads reviews from (dataset.reviews)
DEFAULT_EXPORT = "reviews/text_classification/reviews.jsonl"
TASK = "text_classification"


def _conf(root: Path, *parts: str) -> Any:
    """A conf/ file as the composed config holds it: its `defaults` list dropped, ${paths.root} = the project root."""
    path = root.joinpath("conf", *parts)
    if not path.is_file():
        return None
    node = OmegaConf.load(path)
    if isinstance(node, DictConfig):
        node.pop("defaults", None)
    return OmegaConf.create({"paths": {"root": str(root)}, "node": node}).node


def configured_store() -> str:
    """service.store from conf/service/text_classification.yaml, as `deploy=local` opens it (null: the default path)."""
    root = project_root()
    service = _conf(root, "service", f"{TASK}.yaml")
    store = service.get("store") if service is not None else None
    if not store:
        return str(root / DEFAULT_STORE)
    return str(store) if is_postgres(str(store)) else str(resolve(str(store), root))


def configured_labels() -> list[str]:
    """dataset.labels of the task's dataset (conf/task/text_classification.yaml's `override /dataset`)."""
    root = project_root()
    task = root / "conf" / "task" / f"{TASK}.yaml"
    loaded = OmegaConf.load(task) if task.is_file() else None
    defaults = loaded.get("defaults", []) if isinstance(loaded, DictConfig) else []
    names = [str(v) for d in defaults if isinstance(d, DictConfig) for k, v in d.items() if str(k).endswith("/dataset")]
    dataset = _conf(root, "dataset", f"{names[0]}.yaml") if names else None
    if dataset is None or not dataset.get("labels"):
        raise ConfigError(f"no dataset.labels for task {TASK} in {root / 'conf'}; pass --labels World,Sports,...")
    return [str(label) for label in dataset.labels]


STORE_HELP = (
    "feedback store: a SQLite path (relative: from the working folder) or postgresql:// URL (default: service.store "
    "of the config)"
)


def _store_option(default: Any) -> argparse.ArgumentParser:
    """--store as an option of its own parser, for `mlexp review --store S export` and `mlexp review export --store
    S` alike (the README's "--store for another store" reads as the second)."""
    option = argparse.ArgumentParser(add_help=False)
    option.add_argument("--store", default=default, help=STORE_HELP)
    return option


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlexp review", description=__doc__.splitlines()[0], parents=[_store_option(None)]
    )
    # SUPPRESS: a command without --store keeps the value given before it (argparse copies a command's defaults over)
    after = [_store_option(argparse.SUPPRESS)]
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser(
        "add", parents=after, help=f"create a reviewer or set its password (from ${PASSWORD_ENV}, else asked)"
    )
    add.add_argument("name")
    commands.add_parser("remove", parents=after, help="delete a reviewer account").add_argument("name")
    commands.add_parser("list", parents=after, help="list reviewer accounts")
    export = commands.add_parser(
        "export", parents=after, help="write every review decision as JSONL (what retraining reads)"
    )
    # a file argument is the working folder's, as in any shell command; only the defaults are the project's
    export.add_argument(
        "--out",
        type=command_line_path,
        help=f"relative: from the working folder; default: <project>/{DEFAULT_EXPORT} (what dvc repro retrains on)",
    )
    export.add_argument(
        "--force", action="store_true", help="replace a file holding more decisions than the store (refused without)"
    )
    tasks = commands.add_parser(
        "label-studio-export", parents=after, help="write tasks.json + labeling_config.xml of the queue"
    )
    tasks.add_argument(
        "--out", required=True, type=command_line_path, help="a folder (relative: from the working folder)"
    )
    tasks.add_argument("--labels", help="comma-separated classes (default: the task's dataset.labels)")
    annotations = commands.add_parser(
        "label-studio-import", parents=after, help="store a Label Studio export's annotations"
    )
    annotations.add_argument(
        "file", type=Path, help="Label Studio export, JSON or JSON_MIN (relative: from the working folder)"
    )
    annotations.add_argument("--labels", help="comma-separated classes (default: the task's dataset.labels)")
    return parser


def _password(name: str) -> str:
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    if sys.stdin.isatty():
        return getpass.getpass(f"password for reviewer {name}: ")
    piped = sys.stdin.readline().rstrip("\n")
    if not piped:  # run from a script with nothing piped in: say where a password comes from
        raise ConfigError(
            f"reviewer {name}: no password; type it at the prompt (run in a terminal), pipe it in, or set "
            f"${PASSWORD_ENV}"
        )
    return piped


def _labels(given: str | None) -> list[str]:
    if given is None:
        return configured_labels()
    labels = [label.strip() for label in given.split(",")]
    if not all(labels):
        raise ConfigError(f"--labels {given!r} holds an empty class name; give them comma-separated: World,Sports,...")
    return labels


def main(argv: list[str] | None = None) -> int:
    """Run one review command; returns the exit code (errors print one line)."""
    args = _parser().parse_args(argv)
    if args.command == "label-studio-import" and not args.file.is_file():  # an input path that is not there: exit 2
        print(f"mlexp: error: {_missing_export(args.file)}", file=sys.stderr)
        return 2
    try:
        location = args.store or configured_store()
        missing = _missing_store(args.store, location) if args.command != "add" else None
        if missing and args.command == "list" and args.store is None:  # nothing is made to answer a question
            print(f"no reviewers yet (no feedback store at {missing.path}): mlexp review add <name>")
            return 0
        if missing:
            raise ConfigError(missing.reason)
        store = FeedbackStore(location)
    except MlexpError as error:
        print(f"mlexp: error: {error}", file=sys.stderr)
        return 2
    try:
        if args.command == "add":
            add_reviewer(store, args.name, _password(args.name))
            print(f"reviewer {args.name} can sign in at <service URL>/review")
        elif args.command == "remove":
            remove_reviewer(store, args.name)
            print(f"reviewer {args.name} removed")
        elif args.command == "list":
            print("\n".join(store.reviewers()) or "no reviewers yet: mlexp review add <name>")
        elif args.command == "export":
            print(_export(store, args.out or project_root() / DEFAULT_EXPORT, args.force))
        elif args.command == "label-studio-export":
            tasks, config = label_studio.write_export(store, args.out, _labels(args.labels))
            print(f"Label Studio: import {tasks} into a project whose labeling config is {config}")
        else:
            count = label_studio.import_annotations(store, args.file, _labels(args.labels))
            print(f"{count} Label Studio annotation(s) stored as review decisions")
    except MlexpError as error:
        print(f"mlexp: error: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # a missing input file, an unwritable --out: one line naming the file, no traceback
        print(f"mlexp: error: {_file_error(args.command, error)}", file=sys.stderr)
        return 1
    finally:
        store.close()
    return 0


@dataclass(frozen=True)
class MissingStore:
    path: Path
    reason: str


def _missing_store(given: str | None, location: str) -> MissingStore | None:
    """Why a SQLite store that is not there is refused: opening it would create an empty store, and a mistyped
    --store then listed no reviewers and exported no decisions over the real reviews.jsonl. Only `add` and the
    service make a store."""
    if is_postgres(location) or Path(location.removeprefix("sqlite:///")).exists():
        return None
    shown = Path(location.removeprefix("sqlite:///")).absolute()
    made_by = "a store is made by `mlexp review add <name>` or by the service (deploy=local)"
    if given is None:
        return MissingStore(shown, f"no feedback store at {shown} yet (service.store): {made_by}")
    try:
        default = configured_store()
    except MlexpError:  # outside a project: name the default by its place in one
        default = f"<project>/{DEFAULT_STORE}"
    return MissingStore(
        shown,
        f"--store {given}: no feedback store at {shown}; check the path, or leave --store out for the project's store "
        f"({default}); {made_by}",
    )


def _export(store: FeedbackStore, out: Path, force: bool) -> str:
    """Export the store's decisions to `out`; an `out` holding more decisions is refused unless `force`: decisions are
    never deleted from a store, so fewer means another store (a wrong --store or service.store), and retraining would
    silently lose the rest."""
    check_output_file(out, "give --out the path of the file to write", name_in_folder=Path(DEFAULT_EXPORT).name)
    held = sum(1 for line in out.read_bytes().splitlines() if line.strip()) if out.is_file() else 0
    stored = store.progress()["reviewed"]
    if stored < held and not force:
        where = "(PostgreSQL)" if store.db.postgres else store.db.location  # a URL may hold a password
        raise DataError(
            f"{out} holds {held} review decision(s), the store {where} only {stored}: exporting would "
            f"drop {held - stored}; check --store (or service.store), or give --force to replace the file"
        )
    count = export_reviews(store, out)
    replaced = f" (it held {held})" if count < held else ""
    return f"{count} review decision(s) written to {out}{replaced}"


# what to do when a command's file cannot be read or written
_FILE_FIXES = {
    "label-studio-import": "give the path of a Label Studio export (Export → JSON or JSON_MIN)",
    "export": "choose a writable --out path",
    "label-studio-export": "choose a writable --out folder",
}


def _file_error(command: str, error: OSError) -> str:
    """`<file>: <reason>; <fix>` of a file a review command could not read or write."""
    file = error.filename if error.filename is not None else "a file"
    reason = error.strerror or str(error)
    if isinstance(error, (FileExistsError, NotADirectoryError)):
        reason = "a file is where a folder must be"  # mkdir of the output's folder
    action = "cannot read" if command == "label-studio-import" else "cannot write"
    fix = _FILE_FIXES.get(command, "check the path and its permissions")
    return f"{action} {file}: {reason}; {fix}"


def _missing_export(file: Path) -> str:
    """`<file>: no such file; <fix>` of a Label Studio export that is not there (or is a folder), before the store
    is opened: nothing is read or written."""
    reason = "a folder, not a file" if file.is_dir() else "no such file"
    shown = "" if str(file.absolute()) == str(file) else f" ({file.absolute()})"
    return f"cannot read {file}{shown}: {reason}; {_FILE_FIXES['label-studio-import']}"
