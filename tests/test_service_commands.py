"""`mlexp keys` and `mlexp review` through the real entry point: what the README tells users to run."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from conftest import cli_env, one_line_error, run_cli
from mlexp.tasks.text_classification.service.records import FeedbackRecord, utc_now
from mlexp.tasks.text_classification.service.store import FeedbackStore

REVIEWS = Path("reviews", "text_classification", "reviews.jsonl")
DEFAULT_STORE = Path("serving", "text_classification_feedback.sqlite")


def test_keys_are_created_listed_and_revoked_through_mlexp(tmp_project: Path) -> None:
    # a limit past SQLite's integers was an OverflowError traceback
    huge = run_cli(tmp_project, "keys", "create", "analytics-app", "--limit", str(2**70), check=False)
    assert huge.returncode != 0 and huge.stderr.strip() == (
        f"mlexp keys: error: limit {2**70} is more than the key store holds; give --limit {2**63 - 1:,} or less"
    )
    created = run_cli(tmp_project, "keys", "create", "analytics-app", "--limit", "5")
    assert (tmp_project / "serving" / "keys.sqlite").exists()
    token = created.stdout.strip().splitlines()
    assert any(len(line.strip()) >= 32 for line in token), created.stdout

    listed = run_cli(tmp_project, "keys", "list").stdout
    assert "analytics-app" in listed and "5" in listed
    assert not any(line.strip() in listed for line in token if len(line.strip()) >= 32)  # stored hashed, never shown

    run_cli(tmp_project, "keys", "revoke", "analytics-app")
    assert "revoked" in run_cli(tmp_project, "keys", "list").stdout.lower()


def test_reviewers_are_added_and_listed_through_mlexp(tmp_project: Path) -> None:
    env = {**cli_env(tmp_project), "MLEXP_REVIEWER_PASSWORD": "correct horse battery"}
    run_cli(tmp_project, "review", "add", "alice", env=env)
    assert "alice" in run_cli(tmp_project, "review", "list", env=env).stdout

    wrong = run_cli(tmp_project, "review", "frobnicate", check=False, env=env)
    assert wrong.returncode != 0 and "Traceback" not in wrong.stderr


def test_removing_a_reviewer_who_is_not_an_account_fails_in_one_line(tmp_project: Path) -> None:
    _store_with_decisions(tmp_project / DEFAULT_STORE, 0)
    done = run_cli(tmp_project, "review", "remove", "nobody", check=False)
    assert done.returncode == 1
    assert done.stderr.strip() == "mlexp: error: no reviewer named 'nobody'; see mlexp review list"


def test_adding_a_reviewer_from_a_script_without_a_password_says_where_one_comes_from(tmp_project: Path) -> None:
    env = {k: v for k, v in cli_env(tmp_project).items() if k != "MLEXP_REVIEWER_PASSWORD"}
    done = run_cli(tmp_project, "review", "add", "bob", check=False, env=env, fresh=True)  # stdin: nothing piped
    assert done.returncode == 1  # as the review command's other refusals
    assert done.stderr.strip() == (
        "mlexp: error: reviewer bob: no password; type it at the prompt (run in a terminal), pipe it in, or set "
        "$MLEXP_REVIEWER_PASSWORD"
    )  # was "the password needs at least 8 characters"


def test_a_key_or_review_store_that_is_a_folder_or_another_file_is_one_line(tmp_project: Path) -> None:
    # sqlite3.OperationalError / DatabaseError tracebacks
    text = tmp_project / "notes.txt"
    text.write_text("not a database\n")
    for path, reason in ((tmp_project, "unable to open database file"), (text, "file is not a database")):
        keys = run_cli(tmp_project, "keys", "--db", str(path), "list", check=False)
        assert keys.returncode != 0
        assert keys.stderr.strip() == (
            f"mlexp keys: error: {path}: not a key store ({reason}); name a key store's file, or a new one"
        )
        review = run_cli(tmp_project, "review", "--store", str(path), "list", check=False)
        assert review.returncode != 0
        assert review.stderr.strip().splitlines()[-1] == (
            f"mlexp: error: service.store={path}: not a SQLite store ({reason}); name a store's file, or a new one"
        )
    assert text.read_text() == "not a database\n"


def test_review_export_and_summary_refuse_a_folder_or_a_pipe_as_output_and_leave_it_as_it_was(
    tmp_project: Path,
) -> None:
    # a folder: "cannot write <folder>/.tmp"; a pipe (or /dev/full): replaced by a regular file, exit 0
    _store_with_decisions(tmp_project / DEFAULT_STORE, 0)
    pipe = tmp_project / "pipe"
    os.mkfifo(pipe)
    folder = tmp_project / "exports"
    folder.mkdir()
    review = run_cli(tmp_project, "review", "export", "--out", str(folder), check=False)
    assert (review.returncode, review.stderr.strip()) == (
        1,
        f"mlexp: error: {folder} is a folder; give --out the path of the file to write, e.g. {folder}/reviews.jsonl",
    )
    review = run_cli(tmp_project, "review", "export", "--out", str(pipe), check=False)
    assert (review.returncode, review.stderr.strip()) == (
        1,
        f"mlexp: error: {pipe} is not a regular file (a device or a pipe); give --out the path of the file to write",
    )
    summary = run_cli(tmp_project, "summary", str(pipe), check=False)
    assert (summary.returncode, summary.stderr.strip()) == (
        2,
        f"mlexp summary: error: {pipe} is not a regular file (a device or a pipe); give the path of the file to write",
    )
    assert stat.S_ISFIFO(pipe.stat().st_mode) and list(folder.iterdir()) == []


def test_output_files_named_on_the_command_line_are_taken_from_the_working_folder(tmp_project: Path) -> None:
    # `mlexp data abalone d/x.data` run in <project>/notes wrote <project>/d/x.data (and named it), as did summary
    notes = tmp_project / "notes"
    notes.mkdir()
    env = cli_env(tmp_project)
    _store_with_decisions(tmp_project / DEFAULT_STORE, 0)
    data = run_cli(notes, "data", "abalone", "d/abalone.data", env=env)
    summary = run_cli(notes, "summary", "s/summary.md", env=env)
    review = run_cli(notes, "review", "export", "--out", "r/reviews.jsonl", env=env)
    assert data.stdout == f"wrote {notes / 'd' / 'abalone.data'} (4177 rows)\n"
    assert review.stdout == f"0 review decision(s) written to {notes / 'r' / 'reviews.jsonl'}\n"
    assert (notes / "s" / "summary.md").read_text() == summary.stdout
    assert summary.stderr == f"wrote {notes / 's' / 'summary.md'}\n"
    assert sorted(path.name for path in notes.rglob("*") if path.is_file()) == [
        "abalone.data",
        "reviews.jsonl",
        "summary.md",
    ]
    assert not any((tmp_project / name).exists() for name in ("d", "s", "r"))


def _store_with_decisions(path: Path, count: int) -> Path:
    with FeedbackStore(path) as store:
        records = [FeedbackRecord("implicit", "news", f"text {i}", "World", 0.4, utc_now()) for i in range(count)]
        for feedback_id in store.add(records):
            store.decide(feedback_id, "alice", "Sports")
    return path


def test_a_mistyped_review_store_is_refused_and_nothing_is_created_or_emptied(tmp_project: Path) -> None:
    # export --store <typo> made an empty store there and wrote "0 review decision(s)" over reviews.jsonl, exit 0
    default = _store_with_decisions(tmp_project / DEFAULT_STORE, 5)
    run_cli(tmp_project, "review", "export")
    reviews = tmp_project / REVIEWS
    before = reviews.read_bytes()
    assert before.count(b"\n") == 5
    (tmp_project / "export.json").write_text("[]")
    typo = tmp_project / "sreving" / "feedback.sqlite"
    for command in (
        ("export",),
        ("list",),
        ("remove", "alice"),
        ("label-studio-export", "--out", "ls", "--labels", "World,Sports"),
        ("label-studio-import", "export.json", "--labels", "World,Sports"),
    ):
        assert one_line_error(tmp_project, "review", *command, "--store", str(typo)) == (
            f"--store {typo}: no feedback store at {typo}; check the path, or leave --store out for the project's "
            f"store ({default}); a store is made by `mlexp review add <name>` or by the service (deploy=local)"
        ), command
    assert reviews.read_bytes() == before
    assert not typo.parent.exists() and not (tmp_project / "ls").exists()


def test_review_export_refuses_to_replace_decisions_with_fewer_unless_forced(tmp_project: Path) -> None:
    # a store with fewer decisions (another store: a store never loses one) silently shrank reviews.jsonl
    full = _store_with_decisions(tmp_project / "full.sqlite", 5)
    other = _store_with_decisions(tmp_project / "other.sqlite", 2)
    reviews = tmp_project / REVIEWS
    run_cli(tmp_project, "review", "export", "--store", str(full))
    before = reviews.read_bytes()
    default = _store_with_decisions(tmp_project / DEFAULT_STORE, 0)  # the service's, with no decision yet
    for store, held in ((other, 2), (default, 0)):
        command = ("--store", str(store)) if store == other else ()  # no --store: the project's
        refused = run_cli(tmp_project, "review", "export", *command, check=False)
        assert (refused.returncode, refused.stderr.strip()) == (
            1,
            f"mlexp: error: {reviews} holds 5 review decision(s), the store {store} only {held}: exporting would "
            f"drop {5 - held}; check --store (or service.store), or give --force to replace the file",
        )
        assert reviews.read_bytes() == before
    forced = run_cli(tmp_project, "review", "export", "--store", str(other), "--force")
    assert forced.stdout == f"2 review decision(s) written to {reviews} (it held 5)\n"
    assert reviews.read_bytes().count(b"\n") == 2


def test_review_commands_before_any_store_create_none(tmp_project: Path) -> None:
    # each opened (and so created) the project's store; export then wrote an empty reviews.jsonl, exit 0
    store = tmp_project / DEFAULT_STORE
    listed = run_cli(tmp_project, "review", "list")
    assert listed.stdout == f"no reviewers yet (no feedback store at {store}): mlexp review add <name>\n"
    for command in (("export",), ("remove", "alice"), ("label-studio-export", "--out", "ls", "--labels", "World")):
        assert one_line_error(tmp_project, "review", *command) == (
            f"no feedback store at {store} yet (service.store): a store is made by `mlexp review add <name>` or by "
            "the service (deploy=local)"
        ), command
    assert not store.parent.exists() and not (tmp_project / REVIEWS).exists() and not (tmp_project / "ls").exists()
