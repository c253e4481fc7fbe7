"""The command line's checks before a trial: a key given twice, a search past the 64-bit integer bound, a range without
end or a grid of more jobs than one machine runs, input paths judged where the job reads them when Hydra moves it
into its run folder (hydra.job.chdir=true), a `${...}` that resolves nowhere named first, and refusals that start no
tracking writer."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import psutil
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from conftest import (
    REPO,
    TINY,
    cli_env,
    one_line_error,
    private_writer_env,
    run_cli,
    seed_store,
    store_client,
    trials_of,
)
from mlexp.config import make_composable
from mlexp.config.bounds import between, interval_out_of_bounds
from mlexp.config.overrides import check_override_keys
from mlexp.config.repeated_keys import check_repeated_keys
from mlexp.errors import ConfigError
from mlexp.sweeps.sweep_size import MAX_GRID_JOBS, grid_too_large

BIG = 99999999999999991611392  # int(1e23)


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["task=tabular_regression", "task=churn_incentives"],
            "task is given twice (task=tabular_regression and task=churn_incentives), and a run takes one value per "
            "key: keep one of them; to run each task, run one command per task",
        ),
        (
            ["model.epochs=2", "dataset.n_rows=300", "model.epochs=3"],
            "model.epochs is given twice (model.epochs=2 and model.epochs=3), and a run takes one value per key: keep "
            "one of them; to run each value, sweep them: -m model.epochs=2,3",
        ),
        (
            ["task=churn_incentives", "model=xgboost_churn", "model=xgboost_churn"],
            "model=xgboost_churn is given twice; keep one of them",
        ),
        (
            ["-m", "model.epochs=1,2", "model.epochs=3"],
            "model.epochs is given twice (model.epochs=1,2 and model.epochs=3), and a run takes one value per key: "
            "keep one of them; to run each value, sweep them: -m model.epochs=1,2,3",
        ),
        (  # a value both give is listed once
            ["model.l1_size=8", "model.l1_size=8,16"],
            "model.l1_size is given twice (model.l1_size=8 and model.l1_size=8,16), and a run takes one value per key: "
            "keep one of them; to run each value, sweep them: -m model.l1_size=8,16",
        ),
        (  # a value out of its key's range: its own line, not a sweep the sweep's check would refuse
            ["model.epochs=2", "model.epochs=-1"],
            "model.epochs is given twice (model.epochs=2 and model.epochs=-1), and a run takes one value per key: "
            "keep one of them; model.epochs=-1 is out of range: it must be at least 1",
        ),
        (
            ["-m", "task=tabular_regression", "model.epochs=3,0", "model.epochs=3"],
            "model.epochs is given twice (model.epochs=3,0 and model.epochs=3), and a run takes one value per key: "
            "keep one of them; model.epochs=0 is out of range: it must be at least 1",
        ),
        (
            ["hydra.job.chdir=true", "hydra.job.chdir=false"],
            "hydra.job.chdir is given twice (hydra.job.chdir=true and hydra.job.chdir=false), and a run takes one "
            "value per key: keep one of them",
        ),
        (  # a value its key cannot take: its own line, not a sweep that would list it
            ["task=tabular_regression", "model.epochs=2", "model.epochs=abc"],
            "model.epochs is given twice (model.epochs=2 and model.epochs=abc), and a run takes one value per key: "
            "keep one of them; model.epochs=abc: the value abc does not fit model.epochs (Value 'abc' of type 'str' "
            "could not be converted to Integer); give model.epochs a value it accepts",
        ),
        (
            ["-m", "task=churn_incentives", "model.max_depth=4,2.5", "model.max_depth=6"],
            "model.max_depth is given twice (model.max_depth=4,2.5 and model.max_depth=6), and a run takes one value "
            "per key: keep one of them; model.max_depth=2.5: the value 2.5 does not fit model.max_depth (Value '2.5' "
            "of type 'float' could not be converted to Integer); give model.max_depth a value it accepts",
        ),
        (  # no task, no type to judge the values by: the task's own line first
            ["task=abalone", "model.epochs=2", "model.epochs=abc"],
            "task='abalone' is not a task; choose one of: anomaly_detection, churn_incentives, document_extraction, "
            "object_detection, recommendation, tabular_regression, text_classification",
        ),
        (
            ["--cfg", "job", "model.epochs=2", "model.epochs=3"],
            "model.epochs is given twice (model.epochs=2 and model.epochs=3), and a run takes one value per key: keep "
            "one of them; to run each value, sweep them: -m model.epochs=2,3",
        ),
    ],
)
def test_a_key_given_twice_is_one_line_naming_both_values(tmp_project, args, line):
    # Hydra kept the last value without a word: task=churn_incentives ran where task=tabular_regression was typed
    assert one_line_error(tmp_project, *args) == line


@pytest.mark.parametrize("flags", [[], ["-m"]])
@pytest.mark.parametrize("override", ["model.l1_sise=8", "++model.l1_sise=8"])
def test_a_key_that_does_not_exist_given_twice_gets_the_line_it_gets_once(tmp_project, flags, override):
    # the line offered a sweep of it: "...: keep one of them; to run each value, sweep them: -m model.l1_sise=8,16"
    once = one_line_error(tmp_project, *flags, "task=tabular_regression", override)
    assert "l1_sise is not" in once and "did you mean model.l1_size?" in once
    twice = (override, override.replace("=8", "=16"))
    assert one_line_error(tmp_project, *flags, "task=tabular_regression", *twice) == once


@pytest.mark.slow
def test_a_key_added_twice_is_offered_the_sweep_that_adds_it_and_that_sweep_runs(tmp_project, empty_store):
    # the sweep offered dropped the ++: `-m extra=2,3`, refused as extra is not a key of the config
    line = one_line_error(tmp_project, "task=tabular_regression", "++extra=2", "++extra=3")
    assert line.endswith("; to run each value, sweep them: -m ++extra=2,3")
    offered = line.rpartition("sweep them: ")[2].split()
    seed_store(tmp_project, empty_store)
    # its first stage alone, in seconds (the sweep exits 1 then: no trial has the objective to rank by)
    run_cli(tmp_project, *offered, "task=tabular_regression", "stage=prepare", "dataset.n_rows=300", check=False)
    trials = trials_of(tmp_project)
    assert sorted((trial.params["extra"], trial.status) for trial in trials) == [("2", "FINISHED"), ("3", "FINISHED")]


def test_adding_deleting_and_sweeping_a_key_are_not_repeats():
    parse = OverridesParser.create().parse_overrides
    check_repeated_keys(parse(["+base=8", "base=9", "~seed", "seed=3", "model.epochs=1,2", "model@a=x", "model@b=y"]))
    with pytest.raises(ConfigError, match=r"^seed is given twice \(seed=1 and seed=2\)"):
        check_repeated_keys(parse(["seed=1", "+x=1", "seed=2"]))
    # ++ sets an existing key as = does: the last value was kept silently
    with pytest.raises(ConfigError, match=r"^model.epochs is given twice \(model.epochs=1 and model.epochs=7\)"):
        check_repeated_keys(parse(["model.epochs=1", "++model.epochs=7"]))


def test_the_python_api_refuses_a_repeated_task_as_the_command_does():
    make_composable()
    with pytest.raises(ConfigError, match=r"^task is given twice \(task=tabular_regression and task=churn_"):
        check_override_keys(REPO / "conf", ["task=tabular_regression", "task=churn_incentives"])  # as mlexp.run


@pytest.mark.parametrize(
    "search",
    ["model.epochs=interval(1,1e23)", "model.epochs=int(interval(1,1e23))", "model.epochs=tag(log, interval(1,1e23))"],
)
def test_a_search_of_an_integer_key_past_64_bits_is_one_line_before_the_sweep(tmp_project, search):
    # each job failed after the sweep's record opened: model.epochs=37454011884736247496704 is out of range
    assert one_line_error(tmp_project, "-m", "sweep=random", search) == (
        f"{search}: model.epochs={BIG} is out of range: it must be at least 1 and at most {2**63 - 1}"
    )


ENDLESS = "an integer range needs a finite upper bound (no whole number is inf); give one, e.g. "


@pytest.mark.parametrize(
    ("search", "example"),
    # int(...): Hydra's grammar failed on int(inf) as it read the override, in its own OverflowError line
    [
        ("model.epochs=interval(1, inf)", "model.epochs=int(interval(1, 100))"),
        ("model.epochs=int(interval(1, inf))", "model.epochs=int(interval(1, 100))"),
        ("model.epochs=tag(log, int(interval(1,inf)))", "model.epochs=tag(log, int(interval(1, 100)))"),
    ],
)
def test_a_search_of_an_integer_key_to_infinity_is_one_line_with_a_finite_range(tmp_project, search, example):
    assert one_line_error(tmp_project, "-m", "sweep=random", search) == f"{search}: {ENDLESS}'{example}'"


ENDLESS_CHOICE = "integer choices must be finite (no whole number is inf); give finite ones, e.g. "


@pytest.mark.parametrize(
    ("args", "example"),
    # Hydra's grammar failed on int(inf) as it read the override, in its own OverflowError line
    [
        (["-m", "sweep=random", "model.epochs=int(choice(1, inf))"], "model.epochs=int(choice(1, 100))"),
        (["-m", "model.epochs=tag(log, int(choice(1, 5, inf)))"], "model.epochs=tag(log, int(choice(1, 5, 100)))"),
        (["-m", "model.epochs=int(2),int(inf)"], "model.epochs=2,100"),
        (["model.epochs=int(choice(inf, 3))"], "model.epochs=int(choice(100, 3))"),
    ],
)
def test_a_choice_of_whole_numbers_with_infinity_is_one_line_with_finite_values(tmp_project, args, example):
    assert one_line_error(tmp_project, *args) == f"{args[-1]}: {ENDLESS_CHOICE}'{example}'"


def test_a_choice_of_whole_numbers_with_minus_infinity_or_nan_names_each(tmp_project):
    search = "model.epochs=int(choice(-inf, 2, nan))"
    assert one_line_error(tmp_project, "-m", "sweep=random", search) == (
        f"{search}: integer choices must be finite (no whole number is -inf or nan); give finite ones, e.g. "
        "'model.epochs=int(choice(-100, 2, 100))'"
    )


HANG_S = 30  # each refusal below takes about a second; before its fix, the command listed values for minutes or forever


ENDLESS_RANGE = "a range needs a finite stop (no count of steps reaches inf); give one, e.g. "


@pytest.mark.parametrize(
    ("sweeper", "search", "refusal"),
    # Hydra's sweeper failed reading int(inf) with its own OverflowError block, after the sweep's record had opened;
    # and each refusal gave its fix as an override, which the sweep file does not take
    [
        ("tpe", "int(interval(1, inf))", f"{ENDLESS}`model.epochs: int(interval(1, 100))`"),
        ("tpe", "interval(1, inf)", f"{ENDLESS}`model.epochs: int(interval(1, 100))`"),
        ("tpe", "int(choice(1, inf))", f"{ENDLESS_CHOICE}`model.epochs: int(choice(1, 100))`"),
        ("tpe", "range(1, inf)", f"{ENDLESS_RANGE}`model.epochs: range(1, 100)`"),
        ("grid", "range(1, inf)", f"{ENDLESS_RANGE}`model.epochs: range(1, 100)`"),  # it hung, listing its values
        (
            "tpe",
            "tag(log, interval(1, 64))",
            "model.epochs takes whole numbers, and interval(...) samples fractions; write "
            "`model.epochs: tag(log, int(interval(1, 64)))`",
        ),
        (
            "grid",
            "interval(1, 64)",
            "a grid runs listed values, and an interval lists none; give values (`model.epochs: a,b` or "
            "`model.epochs: range(start,stop,step)`",
        ),
    ],
)
def test_a_sweep_file_refusal_gives_its_fix_as_the_line_to_write_in_the_file(tmp_project, sweeper, search, refusal):
    (tmp_project / "conf" / "sweep" / "endless.yaml").write_text(
        f"# @package _global_\ndefaults:\n  - {sweeper}\nsweep:\n  name: endless\n"
        f"hydra:\n  sweeper:\n    params:\n      model.epochs: {search}\n"
    )
    line = one_line_error(tmp_project, "-m", "task=tabular_regression", "sweep=endless", timeout=HANG_S)
    assert line.startswith(f"hydra.sweeper.params of sweep=endless: model.epochs={search}: {refusal}")
    assert "in conf/sweep/endless.yaml" in line


@pytest.mark.parametrize(
    ("args", "refusal"),
    [
        # the grid listed range(1, inf)'s values, printing nothing, until the memory ran out
        (["model.epochs=range(1, inf)"], f"{ENDLESS_RANGE}'model.epochs=range(1, 100)'"),
        (["model.epochs=shuffle(range(1, inf))"], f"{ENDLESS_RANGE}'model.epochs=shuffle(range(1, 100))'"),
        # and a fractional range with a step of 0 listed its start forever
        (
            ["model.learning_rate=range(0.1, 0.5, 0.0)"],
            "a range needs a step other than 0 (it would list 0.1 without end); give one, e.g. "
            "'model.learning_rate=range(0.1, 0.5, 0.04)'",
        ),
        # Optuna's sweeper made no distribution of it: "the sweep could not be checked (InvalidOperation: ...)"
        (["sweep=tpe", "model.epochs=range(1, inf)"], f"{ENDLESS_RANGE}'model.epochs=range(1, 100)'"),
    ],
)
def test_a_range_without_end_is_one_line_with_a_finite_one(tmp_project, args, refusal):
    line = one_line_error(tmp_project, "-m", "task=tabular_regression", *args, timeout=HANG_S)
    assert line == f"{args[-1]}: {refusal}"


GRID_FIX = (
    f"a grid runs at most {MAX_GRID_JOBS:,}: give fewer values (a range's step: range(start, stop, step)), or sample "
    "them with sweep=random or sweep=tpe, which run sweep.max_jobs trials"
)


@pytest.mark.parametrize(
    ("search", "count"),
    # Hydra's grid listed every job's overrides, and mlexp's checks tried each value: minutes to hours, silently
    [("model.epochs=range(0, 1000000000)", "1,000,000,000"), ("model.epochs=range(1, 1e12)", "999,999,999,999")],
)
def test_a_grid_of_a_billion_jobs_is_one_line_naming_the_count(tmp_project, search, count):
    line = one_line_error(tmp_project, "-m", "task=tabular_regression", search, timeout=HANG_S)
    assert line == f"the grid would run {count} jobs ({count} values of {search}), and {GRID_FIX}"


def test_a_grid_counts_the_sweep_files_values_with_the_command_lines(tmp_project):
    (tmp_project / "conf" / "sweep" / "wide.yaml").write_text(
        "# @package _global_\nsweep:\n  name: wide\nhydra:\n  sweeper:\n    params:\n"
        "      model.l1_size: range(1, 200)\n"
    )
    line = one_line_error(
        tmp_project, "-m", "task=tabular_regression", "sweep=wide", "model.l2_size=range(1, 200)", timeout=HANG_S
    )
    assert line == (
        "the grid would run 39,601 jobs (199 values of model.l2_size=range(1, 200) × 199 values of "
        f"model.l1_size=range(1, 200) in sweep=wide), and {GRID_FIX}"
    )


def test_a_grid_of_up_to_max_grid_jobs_is_not_refused():
    assert grid_too_large([("a=range(0, 100)", 100), ("b=range(0, 100)", MAX_GRID_JOBS // 100)]) is None
    too_many = grid_too_large([("a=range(0, 100)", 100), ("b=range(0, 101)", MAX_GRID_JOBS // 100 + 1)])
    assert str(too_many).startswith(f"the grid would run {MAX_GRID_JOBS + 100:,} jobs")


def test_a_search_of_a_billion_values_is_judged_by_its_ends_without_listing_them(tmp_project):
    # Optuna samples range(0, 1000000000) as it is; the check of each swept value listed all of them first
    search = "model.epochs=range(0, 1000000000)"
    assert one_line_error(tmp_project, "-m", "task=tabular_regression", "sweep=tpe", search, timeout=HANG_S) == (
        f"{search}: model.epochs=0 is out of range: it must be at least 1"
    )


def test_a_range_too_long_to_list_still_lets_a_dollar_brace_that_resolves_nowhere_be_named(tmp_project):
    # taken for a glob (not listed), the range left the shared ${...} to each of its 1,999 jobs
    line = one_line_error(
        tmp_project, "-m", "task=tabular_regression", "model.l1_size=range(1, 2000)", "seed=${nope}", timeout=HANG_S
    )
    assert line == "seed: Interpolation key 'nope' not found; fix the ${...} it uses"


def test_a_whole_number_interval_samples_its_end():
    # Optuna's IntUniformDistribution(low, high) includes high; a float interval leaves its end out
    assert interval_out_of_bounds("k", 0.0, 1.0, between(0, 1, open_high=True)) is None
    refused = interval_out_of_bounds("k", 0, 1, between(0, 1, open_high=True))
    assert str(refused) == "k=1 is out of range: it must be at least 0 and below 1"


def _abalone_copy(folder: Path) -> None:
    from mlexp.data import abalone

    with zipfile.ZipFile(abalone.packaged_copy()) as archive:
        data = archive.read(archive.namelist()[0])
    folder.mkdir(parents=True)
    (folder / "abalone.data").write_bytes(data)


def test_a_trial_hydra_moves_out_of_the_project_reads_the_relative_path_the_check_judged(tmp_project, tmp_path):
    _abalone_copy(tmp_project / "copies")
    run_dir = tmp_path / "elsewhere" / "run"
    env = {k: v for k, v in cli_env(tmp_project).items() if k != "MLEXP_ROOT"}  # the project found from its folder
    chdir = ("hydra.job.chdir=true", f"hydra.run.dir={run_dir}")
    # the job looked for the project from the run folder: "no mlexp project here: no conf/config.yaml in <run dir>"
    run_cli(tmp_project, "task=tabular_regression", *TINY, *chdir, "dataset.path=copies/abalone.data", env=env)
    [trial] = trials_of(tmp_project)
    assert trial.status == "FINISHED" and trial.metrics["rows_train"] + trial.metrics["rows_test"] == 300
    assert (run_dir / "reports" / "metrics.json").is_file()


def test_a_path_from_the_working_folder_is_read_from_it_when_the_job_runs_in_its_run_folder(tmp_project):
    from mlexp.data import documents

    (tmp_project / "scans").mkdir()
    documents.generate("pay_stub", 7, 0, 2).image.save(tmp_project / "scans" / "page.png")
    chdir = ("task=document_extraction", "stage=prepare", "hydra.job.chdir=true")
    assert one_line_error(tmp_project, *chdir, "dataset.path=scans/nope.png").startswith(
        f"dataset.path=scans/nope.png: no such file or folder ({tmp_project}/scans/nope.png)"
    )
    # judged from the folder mlexp ran in; prepare then looked for <run folder>/scans/page.png and was refused
    run_cli(tmp_project, *chdir, "dataset.path=scans/page.png")
    [trial] = trials_of(tmp_project, experiment="document_extraction")
    assert trial.status == "FINISHED" and trial.params["dataset.path"] == str(tmp_project / "scans" / "page.png")


def test_a_refusal_inside_a_job_run_in_its_run_folder_is_one_line_and_leaves_no_folder(tmp_project):
    # the run folder, the job's working folder, was removed before the project was looked up: a FileNotFoundError
    line = one_line_error(tmp_project, "hydra.job.chdir=true", "deploy=local", "deploy.port=70000")
    assert line == "deploy.port=70000 is not a TCP port; give it 1-65535, or 0 for any free one"
    assert not (tmp_project / "outputs").exists()


def test_a_dollar_brace_that_resolves_nowhere_is_named_before_the_range_it_breaks(tmp_project):
    # the range was named first, and the interpolation only after it was fixed
    assert one_line_error(tmp_project, "model.epochs=0", "model.l1_size=${nope}") == (
        "model.l1_size: Interpolation key 'nope' not found; fix the ${...} it uses"
    )


def test_a_job_reading_an_unset_environment_variable_before_its_checks_is_one_line(tmp_project_with_store):
    # the job reads params_file before the runner's checks (a swept ${...} leaves the sweep's shared check to the
    # jobs): only a ${...} naming no key was one line there, an unset variable omegaconf's traceback
    done = run_cli(
        tmp_project_with_store,
        "-m",
        "task=tabular_regression",
        *TINY,
        "model.l1_size=choice(${model.l2_size})",
        "params_file=${oc.env:MLEXP_TEST_UNSET}",
        check=False,
    )
    assert done.returncode == 1
    assert (
        'mlexp: error: params_file: KeyError raised while resolving interpolation: "Environment variable '
        "'MLEXP_TEST_UNSET' not found\"; fix the ${...} it uses"
    ) in done.stderr
    assert "Traceback" not in done.stderr


def _writers_of(project: Path) -> list[psutil.Process]:
    """Tracking writer processes started with the project's own writer scope (private_writer_env)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            writer = "mlexp.tracking.writer_process" in " ".join(process.info["cmdline"] or ())
            if writer and process.environ().get("MLEXP_WRITER_SCOPE") == str(project):
                found.append(process)
        except psutil.Error:
            continue
    return found


@pytest.mark.parametrize(
    "args",
    [
        ("model.epochs=${nope}",),
        ("params_file=${oops}",),
        ("params_file=nope.yaml",),
        ("deploy=local", "deploy.port=70000"),
        ("task=anomaly_detection", "deploy=local"),
    ],
)
def test_a_command_refused_before_its_trial_starts_no_tracking_writer(tmp_project, args):
    # each started a writer process, which loaded MLflow for nothing and stayed for minutes
    done = run_cli(tmp_project, *args, env=private_writer_env(tmp_project), check=False)
    assert done.returncode == 2 and done.stderr.startswith("mlexp: error: ")
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not _writers_of(tmp_project)


@pytest.mark.parametrize("params_file", [(), ("params_file=params.yaml",)])
def test_a_dollar_brace_naming_a_missing_value_is_refused_before_the_tracking_writer_starts(tmp_project, params_file):
    # refused by the job, after the writer had started: a sweep's jobs may fill a `???`, a single run's nothing does
    shutil.copy(REPO / "params.yaml", tmp_project / "params.yaml")  # its file fills the task's values, not extra
    args = ("task=tabular_regression", *params_file, "++extra=???", "model.l1_size=${extra}")
    done = run_cli(tmp_project, *args, env=private_writer_env(tmp_project), check=False)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "mlexp: error: model.l1_size: MissingMandatoryValue while resolving interpolation: Missing mandatory value: "
        "extra; fix the ${...} it uses"
    ]
    assert not _writers_of(tmp_project)
    assert not (tmp_project / "outputs").exists()  # nor did Hydra make the run's folder


# the command run with check_config counted: in the early check, in the runner, wherever it is called from
_COUNTED = """
import atexit, sys
import mlexp.config.validate as validate
import mlexp.runner as runner
calls = []
def counted(*args, **kwargs):
    calls.append(1)
    return check_config(*args, **kwargs)
check_config, validate.check_config, runner.check_config = validate.check_config, counted, counted
atexit.register(lambda: print(f"check_config ran {len(calls)} time(s)", file=sys.stderr))
from mlexp.cli import main
sys.argv = ["mlexp", *sys.argv[1:]]
main()
"""


def test_a_single_run_checks_its_values_once(tmp_project_with_store):
    # once before the tracking writer started, and again in the runner (its first stage alone: the runner checks the
    # config before any stage, and the later ones would only load MXNet and train)
    done = subprocess.run(
        [sys.executable, "-c", _COUNTED, "task=tabular_regression", "stage=prepare", *TINY],
        cwd=tmp_project_with_store,
        env=cli_env(tmp_project_with_store),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "check_config ran 1 time(s)" in done.stderr.splitlines()


def test_an_unquoted_dollar_brace_over_a_params_file_is_refused_as_without_one(tmp_project):
    # params_file= put `${extra}` back escaped, as the text `$\{extra\}`: "a command-line value does not fit over the
    # file's values: Value '$\{extra\}' of type 'str' could not be converted to Integer" (the test above quotes it)
    shutil.copy(REPO / "params.yaml", tmp_project / "params.yaml")
    args = ("task=tabular_regression", "++extra=???", "model.l1_size=${extra}")
    refused = one_line_error(tmp_project, *args)
    assert refused == (
        "model.l1_size: MissingMandatoryValue while resolving interpolation: Missing mandatory value: extra; fix the "
        "${...} it uses"
    )
    assert one_line_error(tmp_project, *args, "params_file=params.yaml") == refused


def test_serving_a_champion_that_does_not_exist_is_refused_before_training(tmp_project, empty_store):
    # `mlexp task=recommendation deploy=local` trained a whole trial, then failed: no alias 'champion'
    fresh = one_line_error(tmp_project, "task=recommendation", "deploy=local")  # no store made to ask it
    assert fresh.startswith("deploy=local serves deploy.source=champion, and registered model 'recommendation' has no ")
    assert fresh.endswith("register one first (mlexp task=recommendation deploy=registry), or serve another model: "
                          "deploy.source=trial|best|<trial run id>")  # fmt: skip
    # the registration it offers is the one the service looks for: same store, name and alias
    alt = f"sqlite:///{tmp_project / 'alt.db'}"
    line = one_line_error(
        tmp_project, "task=recommendation", "deploy=local", f"tracking.uri={alt}", "deploy.model_name='my,shop'"
    )
    offered = shlex.split(line.split("register one first (")[1].split("), or serve")[0])
    assert offered[:4] == ["mlexp", "task=recommendation", "deploy=registry", f"tracking.uri={alt}"]
    # pasted, the name reaches Hydra as the text it is (unquoted, `my,shop` would be a list)
    [name] = OverridesParser.create().parse_overrides(offered[4:])
    assert (name.key_or_group, name.value()) == ("deploy.model_name", "my,shop")
    assert not (tmp_project / "alt.db").exists()
    assert "deploy=registry deploy.alias=live)" in one_line_error(
        tmp_project, "task=recommendation", "deploy=local", "deploy.alias=live"
    )
    seed_store(tmp_project, empty_store)
    done = run_cli(tmp_project, "task=text_classification", "stage=deploy", "deploy=local", check=False)
    assert done.returncode == 2 and "registered model 'text_classification' has no alias 'champion'" in done.stderr
    assert store_client(tmp_project).get_experiment_by_name("text_classification") is None  # no trial opened
