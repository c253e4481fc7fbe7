"""What the command prints around the work: versions, per-command help, a pipe closed early, progress bars only on a
terminal, a sweep file chosen without -m."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from conftest import TINY, cli_env, composed_with_hydra, one_line_error, run_cli
from run_folders import run_folder


def test_version_names_mlexp_and_the_tools_its_records_depend_on(tmp_project):
    done = run_cli(tmp_project, "--version")
    expected = f"mlexp 0.1.0 (Hydra {version('hydra-core')}, MLflow {version('mlflow')}, DVC {version('dvc')})"
    assert done.stdout.strip() == expected  # was Hydra's `Hydra 1.3.8` alone


@pytest.mark.parametrize("command", ["sync", "compare", "params", "pipelines", "delete", "relocate", "summary", "data"])
def test_every_command_answers_help_with_its_usage(tmp_project, command):
    done = run_cli(tmp_project, command, "--help")  # `mlexp sync --help` was "error: usage: mlexp sync", exit 2
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"usage: mlexp {command}") and len(lines) == 3 and lines[2], done.stdout


def test_a_reader_that_stops_reading_ends_the_command_quietly(tmp_project):
    read_end, write_end = os.pipe()
    os.close(read_end)  # as `mlexp ... | head` once head has its lines
    try:
        done = subprocess.run(
            [sys.executable, "-m", "mlexp.cli", "--version"],
            cwd=tmp_project,
            env=cli_env(tmp_project),
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (1, "")  # was Python's "Exception ignored ... BrokenPipeError", 120


def test_a_sweep_file_without_m_runs_one_trial_and_says_how_to_run_the_sweep(tmp_project):
    done = run_cli(tmp_project, "task=tabular_regression", "sweep=grid", *TINY)
    warning = "mlexp: warning: sweep=grid without -m runs one trial; the sweep runs with: mlexp -m "
    assert done.stderr.splitlines()[0] == warning + "task=tabular_regression sweep=grid " + " ".join(TINY)
    assert "trial done: test_msle = " in done.stdout
    # the output is a pipe here: the epochs' progress bar is drawn on a terminal only, as the other tasks' bars
    assert "Training" not in done.stderr + done.stdout
    # a value the run refuses: the warning still comes first, the refusal is the last line
    refused = run_cli(tmp_project, "task=tabular_regression", "sweep=grid", "model.epochs=0", check=False)
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [
        warning + "task=tabular_regression sweep=grid model.epochs=0",
        "mlexp: error: model.epochs=0 is out of range: it must be at least 1",
    ]


def test_help_names_every_command_and_only_real_config_groups(tmp_project):
    from mlexp.commands import COMMANDS

    shown = run_cli(tmp_project, "--help").stdout
    assert [command for command in COMMANDS if f"mlexp {command}" not in shown] == []
    groups = shown.split("Config groups (group=option):\n")[1].split("\n\n")[0].splitlines()
    assert groups and all(": " in line and line.split(": ")[1] for line in groups), groups  # a group lists options
    assert "recommendation_schemas" not in shown  # data files beside the groups, no options


@pytest.mark.parametrize("answer", [EOFError, KeyboardInterrupt])
def test_ending_the_input_at_a_confirmation_is_a_no(monkeypatch, capsys, answer):
    # Ctrl-D at `mlexp delete`'s or `mlexp sync --discard`'s [y/N] was an EOFError traceback
    from mlexp.console import confirmed

    def ended(prompt: str) -> str:
        raise answer

    monkeypatch.setattr("builtins.input", ended)
    assert confirmed("discard them?") is False
    monkeypatch.setattr("builtins.input", lambda prompt: " Yes ")
    assert confirmed("discard them?") is True


def test_a_stage_alone_names_what_it_wrote_and_the_next_stage_on_it(tmp_project):
    # prepare alone said only "stage prepare done.", and the train stage the user ran next refused, wanting
    # paths.data=<run folder>/data, a folder no line had named
    lines = run_cli(tmp_project, "task=tabular_regression", "stage=prepare", *TINY).stdout.splitlines()
    done = next(i for i, line in enumerate(lines) if line.startswith("stage prepare done."))
    data = Path(lines[done].removeprefix("stage prepare done.  (wrote: ").removesuffix(")"))
    assert (data / "train.parquet").is_file()
    assert lines[done + 1].startswith("  next stage:      mlexp ")
    following = shlex.split(lines[done + 1].removeprefix("  next stage:      "))
    assert following == [
        "mlexp",
        "task=tabular_regression",
        *TINY,
        "stage=train",
        f"paths.data={data.relative_to(tmp_project)}",
    ]
    assert lines[done + 2] == "  compare trials:  mlexp compare task=tabular_regression"
    trained = run_cli(tmp_project, *following[1:]).stdout
    assert "stage train done." in trained and " stage=evaluate paths.data=" in trained and " paths.models=" in trained


def test_a_run_that_only_serves_offers_no_comparison_and_the_trials_view_leaves_it_out(
    tmp_project_with_store, tmp_path
):
    # it ended with `compare trials: mlexp compare experiment=served` and the link to the "mlexp trials" view, though
    # compare says "no trials" of such runs; that view listed it among the trials a later trial's link opened
    from mlflow.tracking import MlflowClient

    import mlexp
    from object_detection_tiny import serve_only_overrides

    served = serve_only_overrides(tmp_path / "detector")
    done = run_cli(tmp_project_with_store, "task=object_detection", *served)
    lines = done.stdout.splitlines()
    assert any(line.startswith("service: http://127.0.0.1:") for line in lines), done.stdout  # where it served
    assert lines[-1] == "stage deploy done.", done.stdout  # nothing to compare, no view of trials to open
    served_here = mlexp.run("object_detection", served, root=tmp_project_with_store)
    assert served_here.ui_link is None  # the Python API's run links no comparison either
    run_cli(tmp_project_with_store, "task=tabular_regression", *TINY, "tracking.experiment_name=served")
    client = MlflowClient(f"sqlite:///{tmp_project_with_store / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("served")
    view = json.loads(experiment.tags["mlflow.sharedViewState.mlexp-trials"])
    listed = client.search_runs([experiment.experiment_id], json.loads(view["state"])["searchFilter"])
    assert [run.data.tags["mlexp.task"] for run in listed] == ["tabular_regression"]  # as `mlexp compare` lists them
    assert "served: 1 trial, " in run_cli(tmp_project_with_store, "compare", "experiment=served").stdout


def test_the_commands_a_run_prints_keep_the_flags_that_chose_its_config(tmp_project_with_store):
    # without them, the sweep the warning offers and the next stage composed conf/config.yaml, not the user's config
    project = tmp_project_with_store
    own = project.parent / "my configs"
    own.mkdir()
    (own / "seed_7.yaml").write_text((project / "conf" / "config.yaml").read_text().replace("seed: 42", "seed: 7"))
    args = ("task=tabular_regression", "sweep=grid", "stage=prepare", *TINY)
    done = run_cli(project, "-cd", "../my configs", "-cn", "seed_7", *args)
    flags = ["--config-dir=../my configs", "--config-name=seed_7"]  # as the command spells them out
    sweep = done.stderr.splitlines()[0].partition("; the sweep runs with: ")[2]
    assert shlex.split(sweep) == ["mlexp", "-m", *flags, *args], done.stderr
    [following] = [line for line in done.stdout.splitlines() if line.startswith("  next stage:      mlexp ")]
    assert shlex.split(following.removeprefix("  next stage:      "))[:3] == ["mlexp", *flags], following


def test_the_next_stage_is_never_deploy(tmp_project):
    # after evaluate it offered `stage=deploy`, which serves the registry's champion (deploy.source), not what the
    # stages wrote: on a project without a champion that failed
    from mlexp.next_steps import next_stage_command

    args = ("task=recommendation", "deploy=local")
    cfg = composed_with_hydra(tmp_project, *args, "stage=evaluate")
    assert next_stage_command(cfg, [*args, "stage=evaluate"], tmp_project) is None
    cfg = composed_with_hydra(tmp_project, *args, "stage=train")
    assert next_stage_command(cfg, [*args, "stage=train"], tmp_project).startswith(
        "mlexp task=recommendation deploy=local stage=evaluate paths.data="
    )


def test_a_stage_dvc_runs_gives_no_next_steps(tmp_project):
    # inside `dvc repro` every stage would repeat them: the pipeline's last stage gives them once
    args = ("task=tabular_regression", "stage=prepare", "dataset.n_rows=300")
    run_cli(tmp_project, "params")  # params.yaml, as DVC's stages read it
    by_hand = run_cli(tmp_project, *args, "params_file=params.yaml").stdout
    # DVC's own folders, which the next stage reads without paths.data
    assert f"  next stage:      mlexp {' '.join(args[:1] + args[2:])} params_file=params.yaml stage=train\n" in by_hand
    env = {**cli_env(tmp_project), "DVC_STAGE": "prepare"}
    by_dvc = run_cli(tmp_project, *args, "params_file=params.yaml", env=env).stdout.splitlines()
    assert by_dvc[-1] == f"stage prepare done.  (wrote: {tmp_project / 'data' / 'tabular_regression'})"


def test_ctrl_c_while_the_command_loads_its_libraries_is_one_line(tmp_project):
    # the `mlexp` script's entry point; Ctrl-C during mlexp.cli's imports was a 30-line import traceback
    interrupt_hydras_import = (
        "import sys\n"
        "class Interrupt:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'hydra':\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, Interrupt())\n"
        "from mlexp.entry import main\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", interrupt_hydras_import, "task=tabular_regression"],
        cwd=tmp_project,
        env=cli_env(tmp_project),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stderr) == (130, "mlexp: interrupted (Ctrl-C)\n")


def test_the_mlexp_script_starts_at_the_entry_point():
    from importlib.metadata import entry_points

    [script] = [e for e in entry_points(group="console_scripts") if e.name == "mlexp"]
    assert script.value == "mlexp.entry:main"


def test_a_trial_prints_its_headline_metrics_as_its_reports_have_them_and_a_sweep_leaves_them_to_its_table(
    tmp_project,
):
    done = run_cli(tmp_project, "task=tabular_regression", *TINY)
    headline = json.loads((run_folder(done) / "reports" / "metrics.json").read_text())
    lines = done.stdout.splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("  also: "))
    # the lines under the objective's: every other headline metric, each whole on one line, as metrics.json has it
    block = " ".join(line.strip() for line in lines[start:] if line.startswith(("  also: ", " " * 8)))
    shown = dict(item.split(" = ") for item in block.removeprefix("also: ").split(", "))
    assert {name: float(value) for name, value in shown.items()} == pytest.approx(
        {name: value for name, value in headline.items() if name != "test_msle"}, rel=1e-5
    )
    assert set(shown) == {"test_mae", "final_train_loss"}  # was only "trial done: test_msle = ..."

    swept = run_cli(tmp_project, "-m", "task=tabular_regression", "model.l1_size=8,16", *TINY)
    assert "also:" not in swept.stdout


def test_help_before_a_command_is_that_commands_help(tmp_project):
    # was "'compare' is neither a command nor an override (key=value); did you mean compare? ..."
    done = run_cli(tmp_project, "--help", "compare")
    assert done.stdout.startswith("usage: mlexp compare task=<task>")


def test_outside_a_project_the_command_says_so_and_writes_nothing(tmp_path):
    # it fell back to mlexp's own checkout, whose mlflow.db and outputs/ the trial then wrote, without a word
    env = {k: v for k, v in os.environ.items() if k not in ("MLEXP_ROOT", "MLFLOW_TRACKING_URI")}
    command = [sys.executable, "-m", "mlexp.cli", "task=tabular_regression", "dataset.n_rows=300"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"mlexp: error: no mlexp project here: no conf/config.yaml in {tmp_path.resolve()} or its parents; cd into "
        "your project (the folder holding conf/), or set MLEXP_ROOT=<project folder>"
    )
    assert list(tmp_path.iterdir()) == []
    # the general usage needs no project
    done = subprocess.run([*command[:3], "--help"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("mlexp: declarative ML experiments")


def test_a_project_folder_named_without_its_conf_is_one_line(tmp_path):
    # a FileNotFoundError (or NotADirectoryError) traceback from listing conf/'s groups; with conf/ but no
    # config.yaml, Hydra's "Cannot find primary config 'config'" block
    (tmp_path / "with_conf" / "conf").mkdir(parents=True)
    (tmp_path / "a_file").write_text("")
    for folder in ("empty", "missing", "a_file", "with_conf"):
        named = tmp_path / folder
        if folder == "empty":
            named.mkdir()
        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"} | {"MLEXP_ROOT": str(named)}
        done = run_cli(tmp_path, "task=tabular_regression", env=env, check=False)
        assert done.returncode == 2
        assert done.stderr.strip() == (
            f"mlexp: error: MLEXP_ROOT={named} names {named}, which has no conf/config.yaml; set MLEXP_ROOT to your "
            "project folder (the one holding conf/), or unset it and run inside the project"
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "empty", "with_conf"]  # nothing written


@pytest.mark.parametrize("args", [("task=tabular_regression",), ("-m", "task=tabular_regression", "seed=1,2")])
def test_a_config_file_edited_into_invalid_yaml_is_one_line_naming_the_file_and_line(tmp_project, args):
    # a 205-line yaml.parser.ParserError traceback, twice chained (Hydra's composition, then the explanation's)
    broken = tmp_project / "conf" / "model" / "mlp_regressor.yaml"
    broken.write_text("defaults: [\n")
    done = run_cli(tmp_project, *args, check=False)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"mlexp: error: {broken}, line 2, column 1: not valid YAML (expected the node content, but found "
        "'<stream end>'); fix that line"
    )
    assert not (tmp_project / "mlflow.db").exists()


def test_a_broken_config_yaml_read_by_mlexps_own_checks_is_named_too(tmp_project):
    # without task=, mlexp reads config.yaml for the default task before Hydra does: "<unicode string>, line 3"
    broken = tmp_project / "conf" / "config.yaml"
    broken.write_text("defaults:\n  - dataset: abalone\n   - x\n")
    for args in (("seed=1",), ("--help",)):
        done = run_cli(tmp_project, *args, check=False)
        assert done.returncode == 2
        assert done.stderr.strip() == (
            f"mlexp: error: {broken}, line 3, column 4: not valid YAML (expected <block end>, but found '<block "
            "sequence start>'); fix that line"
        )


@pytest.mark.parametrize(
    ("flags", "line"),
    [
        (
            ["--resolve"],
            "--resolve resolves the config --cfg prints: use them together (mlexp --cfg job --resolve <overrides>)",
        ),  # fmt: skip
        (["--cfg", "job", "--info"], "--cfg and --info are two modes, and Hydra takes one: keep one of them"),
    ],
)
def test_hydras_flags_that_do_not_go_together_are_one_line(tmp_project, flags, line):
    # Hydra's ValueError traceback ("The --resolve flag can only be used in conjunction with --cfg or --help",
    # "Only one of --run, --multirun, --cfg, --info and --shell_completion can be specified")
    assert one_line_error(tmp_project, *flags, "task=tabular_regression") == line


def test_help_of_a_composition_with_a_value_its_key_cannot_take_is_the_runs_line(tmp_project):
    # ConfigCompositionException: Error merging override model.epochs=abc, a 90-line traceback
    assert one_line_error(tmp_project, "--help", "task=tabular_regression", "model.epochs=abc") == (
        "model.epochs=abc: the value abc does not fit model.epochs (Value 'abc' of type 'str' could not be converted "
        "to Integer); give model.epochs a value it accepts"
    )


def test_a_params_file_named_by_an_unresolvable_interpolation_is_one_line(tmp_project):
    # omegaconf's InterpolationKeyError traceback, read before the runner's own check of every ${...}
    done = run_cli(tmp_project, "task=tabular_regression", "params_file=${oops}", *TINY, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "mlexp: error: params_file: Interpolation key 'oops' not found; fix the ${...} it uses"
    )
    assert "Traceback" not in done.stderr


def test_hydras_tab_completion_completes_a_task_in_bash(tmp_project):
    # the words after -sc are not overrides: "install is not a key of the config" refused every use of it
    env = {**cli_env(tmp_project), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    script = (
        'eval "$(mlexp -sc install=bash)"; COMP_LINE="mlexp task=chu"; COMP_POINT=${#COMP_LINE}; '
        'COMP_WORDS=(mlexp task=chu); COMP_CWORD=1; hydra_bash_completion; echo "${COMPREPLY[@]}"'
    )
    done = subprocess.run(["bash", "-c", script], cwd=tmp_project, env=env, capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "task=churn_incentives", "")


@pytest.mark.parametrize(
    ("words", "problem"),
    [
        ((), "--shell-completion takes one subcommand and nothing else (none given)"),
        (
            ("install=bash", "query=bash"),
            "--shell-completion takes one subcommand and nothing else (install=bash query=bash)",
        ),
        (("install=tcsh",), "install=tcsh: Hydra completes bash, fish, zsh"),
    ],
)
def test_tab_completion_without_one_subcommand_for_a_known_shell_is_one_line(tmp_project, words, problem):
    # Hydra's ValueError traceback: "Expecting one subcommand from ['install', 'uninstall', 'query'] to be set"
    assert one_line_error(tmp_project, "-sc", *words) == (
        f'{problem}; write one of install=SHELL, uninstall=SHELL, query=SHELL: eval "$(mlexp -sc install=bash)"'
    )


def test_a_printed_package_the_job_config_lacks_is_one_line_naming_what_is_there(tmp_project):
    # Hydra wrote "package 'model.nope' not found in config", without mlexp's prefix or a hint, exit 1
    assert one_line_error(tmp_project, "--cfg", "job", "task=churn_incentives", "--package", "model.nope") == (
        "--package model.nope: model.nope is not a key of model; valid keys: decision_threshold, eta, gamma, "
        "incentives, max_depth, min_child_weight, nthread, num_round, subsample"
    )


def test_a_printed_package_that_is_null_is_one_line_and_global_prints_the_whole_config(tmp_project):
    # Hydra: "package 'dataset.path' not found in config", exit 1, for a key the config has
    assert one_line_error(tmp_project, "--cfg", "job", "task=churn_incentives", "--package", "dataset.path") == (
        "--package dataset.path: dataset.path is null in the job's config; there is nothing to print"
    )
    printed = run_cli(tmp_project, "--cfg", "job", "task=churn_incentives", "--package", "_global_").stdout
    assert printed.startswith("task:\n  name: churn_incentives\n")
