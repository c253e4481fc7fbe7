"""Checks Hydra cannot make alone: that the chosen group options, stage and compute target fit the task, and that
every `${...}` resolves."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import InterpolationKeyError, InterpolationResolutionError, InterpolationToMissingValueError

from mlexp import tasks
from mlexp.config.bounds import Bound, at_least, check_bounds
from mlexp.config.constraints import check_constraints
from mlexp.config.task_groups import foreign_group
from mlexp.errors import ConfigError, a_or_an, did_you_mean, mlexp_error_behind
from mlexp.tracking.tags import quotable

# where a trial can run: this machine, or a SageMaker training job (mlexp.sagemaker.training_job)
COMPUTE_TARGETS = ("local", "sagemaker")
# compute=sagemaker values a training job cannot run with, refused before credentials are looked up or code uploaded:
# MaxRuntimeInSeconds and MaxWaitTimeInSeconds are at least 1 in the API; the model allows 0 instances and a 0 GB volume
# only for instance groups and NVMe instances, but mlexp's one group needs an instance, and EBS-only instances
# (ml.m5, ml.c5) a volume; a negative poll_s would fail in sleep() after the job was submitted
SAGEMAKER_BOUNDS: dict[str, Bound] = {
    "compute.instance_count": at_least(1),
    "compute.volume_size_gb": at_least(1),
    "compute.max_runtime_s": at_least(1),
    "compute.max_wait_s": at_least(1),
    "compute.poll_s": at_least(0),
}
# MaxRuntimeInSeconds: "The maximum value is 28 days" (CreateTrainingJob's StoppingCondition)
MAX_RUNTIME_S = 28 * 24 * 3600
# an execution role as SageMaker takes it: the RoleArn pattern (and length) of botocore's SageMaker service model
ROLE_ARN = re.compile(r"arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+")
ROLE_ARN_LENGTH = (20, 2048)


def all_stages(task: tasks.Task) -> list[str]:
    """The task's stages in order; every task can deploy (to the registry at least)."""
    return [*(s for s in task.stages if s != "deploy"), "deploy"]


def check_config(cfg: DictConfig, choices: Mapping[str, str | None]) -> tasks.Task:
    """The config's values against its task: the chosen options, each key's range, the rules across keys and the
    input paths. The task, when they hold. Here, not in the runner: a single run checks before it starts its tracking
    writer, and the runner's imports would delay that."""
    task = tasks.get(cfg.task.name)
    check_given(cfg)
    check_choices(cfg, choices, all_stages(task))
    check_deploy(cfg, task)
    check_bounds(cfg, task.bounds)
    check_constraints(cfg, task.constraints)
    check_constraints(cfg, task.input_rules)
    return task


def check_given(cfg: DictConfig) -> None:
    """A `???` left in the config (`-m model.l2_size=???,4`) is a value still to give: named before a stage reads it
    as the text '???' and fails in its own terms."""
    # read unresolved: OmegaConf.missing_keys resolves every ${...}, and ${hydra:...} resolves only in the job
    values = OmegaConf.to_container(OmegaConf.masked_copy(cfg, [str(key) for key in cfg if key != "hydra"]))
    missing = next(_missing_keys(values), None)
    if missing is not None:
        raise ConfigError(
            f"{missing} is ???, OmegaConf's mark for a value still to give, and a run needs one: give it a value "
            f"({missing}=<value>)"
        )


def _missing_keys(values: object, prefix: str = "") -> Iterator[str]:
    """The dotted keys whose value is ??? in `values` (a plain container: ??? is OmegaConf's MISSING there)."""
    if values == MISSING:
        yield prefix
    elif isinstance(values, dict | list):
        items = values.items() if isinstance(values, dict) else enumerate(values)
        for key, value in items:
            yield from _missing_keys(value, f"{prefix}.{key}" if prefix else str(key))


def check_choices(cfg: DictConfig, choices: Mapping[str, str | None], stages: list[str]) -> None:
    """Fail with the valid options when a group option, stage or compute target does not fit the task."""
    task = cfg.task.name
    for group, chosen in choices.items():
        error = foreign_group(group, chosen, task) if chosen is not None else None
        if error is not None:
            raise error
    for group, allowed in cfg.task.choices.items():
        chosen = choices.get(group)
        if chosen is not None and chosen not in allowed:
            raise ConfigError(
                f"{group}={chosen!r} is not {a_or_an(group)} option of task {task!r}; "
                f"{did_you_mean(chosen, sorted(allowed))}choose one of: {', '.join(sorted(allowed))}"
                f"{how_to_allow(cfg, group, chosen, list(allowed))}"
            )
    if cfg.stage is not None and cfg.stage not in stages:
        raise ConfigError(
            f"stage={cfg.stage!r} is not a stage of task {task!r}; {did_you_mean(cfg.stage, stages)}"
            f"choose one of: {', '.join(stages)}"
        )
    if cfg.stage == "deploy" and cfg.deploy.target == "none":
        raise ConfigError(
            "stage=deploy with deploy=none deploys nothing: choose deploy=registry (the model of this pipeline run's "
            "evaluated trial), or deploy=local or deploy=sagemaker (serve the registry's champion)"
        )
    check_compute(cfg)
    check_sagemaker_job(cfg)


def how_to_allow(cfg: DictConfig, group: str, chosen: str, allowed: list[str]) -> str:
    """For an option built on the schema of one the task runs (a variant of one's own, in conf/ or a --config-dir
    folder): how to run it with the task, which runs the options its `task.choices` names and no other. Nothing for
    another task's option, whose schema the task's code does not read. `cfg` is composed with `group=chosen` (a single
    run's config; a sweep's check composes the option's own)."""
    section = cfg.get(group)
    if not isinstance(section, DictConfig):
        return ""
    built_on = OmegaConf.get_type(section)
    for option in allowed:
        try:
            schema = ConfigStore.instance().load(f"schema/{group}/{option}.yaml").node
        except (OSError, KeyError):  # an option whose schema has another name: nothing to compare
            continue
        if built_on is not dict and OmegaConf.get_type(schema) is built_on:
            listed = ",".join([*allowed, chosen])
            return (
                f"; {chosen} has {option}'s schema: to run it with this task, add it to the task's choices: "
                f"task.choices.{group}=[{listed}]"
            )
    return ""


def check_model_name(cfg: DictConfig) -> None:
    """A deploy.model_name no MLflow search filter can hold: the registry's searches for its versions would fail
    once a version is made (left pending), so it is refused before any trial opens."""
    name = cfg.deploy.get("model_name")
    if name is not None and not quotable(str(name)):
        raise ConfigError(
            f"deploy.model_name={name}: MLflow's searches cannot hold a name with both kinds of quote, or one ending "
            "in a backslash; choose another name"
        )


def check_deploy(cfg: DictConfig, task: tasks.Task) -> None:
    """A deploy target, model name or port the task cannot take: refused before training, not after it."""
    check_model_name(cfg)
    if cfg.deploy.target == "registry":
        task.check_registrable()
    if cfg.deploy.target == "local" and not 0 <= int(cfg.deploy.port) <= 65535:  # else bind() fails after training
        raise ConfigError(f"deploy.port={cfg.deploy.port} is not a TCP port; give it 1-65535, or 0 for any free one")
    if cfg.deploy.target == "local" and "deploy" not in task.stages:
        raise ConfigError(
            f"deploy=local: task {task.name!r} has no HTTP endpoint of its own; register its model with "
            "deploy=registry and serve it with `mlflow models serve -m models:/<name>@champion` (README)"
        )


def check_compute(cfg: DictConfig) -> None:
    """Refuse a compute target mlexp cannot run yet, rather than run locally while the config says otherwise, and a
    deploy target with compute=sagemaker that this machine cannot deploy after the job."""
    target = cfg.compute.target
    if target not in COMPUTE_TARGETS:
        raise ConfigError(
            f"compute.target={target!r} is not a compute target: choose compute=local (this machine) "
            f"or compute=sagemaker (a SageMaker training job)"
        )
    if target != "sagemaker" or cfg.deploy.target == "none":
        return
    # the job runs the stages up to evaluate; this machine deploys what comes back (mlexp.sagemaker.training_job),
    # never the job itself, which has its own role and MLflow store
    deploy = f"deploy={cfg.deploy.target} with compute=sagemaker"
    if cfg.stage is not None:
        raise ConfigError(
            f"{deploy} and stage={cfg.stage}: the job runs the task's stages and this machine deploys the model they "
            "made; drop stage= (or run stage=deploy on this machine, without compute=sagemaker)"
        )
    if not cfg.compute.wait:
        raise ConfigError(
            f"{deploy} and compute.wait=false: this machine deploys the job's model when it comes back, which needs "
            "mlexp to wait for the job; set compute.wait=true, or deploy=none"
        )
    if cfg.deploy.target == "local":
        raise ConfigError(
            f"{deploy}: the HTTP service would hold this command after the job; run the job with deploy=registry, "
            f"then serve its model: mlexp task={cfg.task.name} stage=deploy deploy=local"
        )
    remote = [f"dataset.{key}={value}" for key, value in cfg.dataset.items() if str(value).startswith("s3://")]
    if remote:
        raise ConfigError(
            f"{deploy} and {remote[0]}: the registered model's input example is read from the dataset on this "
            "machine; run the job with deploy=none, then register its model with the command it prints and a local "
            "copy of the data"
        )


def check_sagemaker_job(cfg: DictConfig) -> None:
    """compute=sagemaker: what SageMaker would refuse that is known without AWS (the role, the region's name, the job's
    limits), refused before credentials are looked up or anything is uploaded."""
    if cfg.compute.target != "sagemaker":
        return
    from mlexp.aws_setup import region_error

    error = role_arn_error("compute", cfg.compute.get("role_arn")) or region_error(
        "compute.region", cfg.compute.get("region")
    )
    if error is not None:
        raise error
    check_bounds(cfg, SAGEMAKER_BOUNDS)
    stopping_condition(cfg.compute)


def role_arn_error(group: str, role_arn: object) -> ConfigError | None:
    """The one line for `<group>.role_arn` missing or not an IAM role ARN (compute=sagemaker, deploy=sagemaker)."""
    example = f"{group}.role_arn=arn:aws:iam::<account>:role/<role>"
    if not role_arn:
        needs = "a role SageMaker can assume, with S3 access to the bucket"
        if group == "deploy":
            needs = "a role SageMaker can assume, with read access to the model bucket"
        return ConfigError(f"{group}=sagemaker needs an execution role: set {example} ({needs}; docs/sagemaker.md)")
    text = str(role_arn)
    low, high = ROLE_ARN_LENGTH
    if not low <= len(text) <= high or ROLE_ARN.fullmatch(text) is None:
        return ConfigError(
            f"{group}.role_arn={text!r} is not an IAM role ARN: set {example} with the 12-digit account "
            "(`aws iam get-role --role-name <role> --query Role.Arn` prints it)"
        )
    return None


def stopping_condition(compute: Any) -> tuple[int, int | None]:
    """compute.max_runtime_s, and the spot wait (null: twice the run time; at least the run time, as SageMaker
    requires); ConfigError when SageMaker would refuse them."""
    runtime = int(compute.max_runtime_s)
    if runtime > MAX_RUNTIME_S:
        raise ConfigError(
            f"compute.max_runtime_s={runtime} is longer than SageMaker lets a training job run (28 days, "
            f"{MAX_RUNTIME_S} s): lower it"
        )
    if not compute.spot:
        return runtime, None
    wait = int(compute.max_wait_s or 2 * runtime)
    if wait < runtime:
        raise ConfigError(
            f"compute.max_wait_s={wait} is shorter than compute.max_runtime_s={runtime}: a spot job waits for "
            "capacity and runs within max_wait_s; raise it or set compute.max_wait_s=null (twice the run time)"
        )
    return runtime, wait


def resolved_config(cfg: DictConfig) -> dict[str, Any]:
    """The config with every `${...}` resolved. One that cannot resolve (no such key, a wrong type, an unset
    environment variable) is a wrong config, refused in one line before a trial opens; a refusal of one of
    mlexp's resolvers goes on as it is (its own line)."""
    try:
        resolved = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    except InterpolationResolutionError as error:
        if mlexp_error_behind(error) is not None:
            raise
        raise unresolvable(error) from error
    assert isinstance(resolved, dict)
    return {str(key): value for key, value in resolved.items()}


def unresolvable(error: InterpolationResolutionError) -> ConfigError:
    """The one line for a `${...}` that cannot resolve: the key, OmegaConf's reason, the fix."""
    reason = str(error).strip().splitlines()[0]
    return ConfigError(f"{error.full_key}: {reason}; fix the ${{...}} it uses")


def check_resolvable(cfg: DictConfig, *, in_job: bool = False) -> None:
    """Refuse the first `${...}` that resolves nowhere (no such key, an unset environment variable), or that one of
    mlexp's resolvers refuses, as the run would; one that may resolve where the job runs (Hydra's runtime values) is
    the job's to judge. `in_job`: `cfg` holds the job's own values, as unresolvable_refusal takes it."""
    try:
        OmegaConf.to_container(cfg, resolve=True)
    except InterpolationResolutionError as error:
        refusal = mlexp_error_behind(error) or unresolvable_refusal(error, in_job=in_job)
        if refusal is not None:
            raise refusal from error


def unresolvable_refusal(error: InterpolationResolutionError, *, in_job: bool = False) -> ConfigError | None:
    """unresolvable()'s line for a `${...}` that resolves nowhere: one naming no key, or an environment variable that
    is not set, which no job's values change; `in_job`: in a job's own config, where nothing fills a `???` value any
    more, one naming such a value too. None for a failure a job's values may change (a swept key left `???`, a type).
    (An unset variable is told by OmegaConf's message for oc.env: if that wording changes, it is left to the jobs.)"""
    if isinstance(error, InterpolationKeyError) or (in_job and isinstance(error, InterpolationToMissingValueError)):
        return unresolvable(error)
    seen: BaseException | None = error  # OmegaConf chains what oc.env raised as context
    while seen is not None and not isinstance(seen, KeyError):
        seen = seen.__cause__ or seen.__context__
    unset = seen is not None and str(seen).strip("'\"").startswith("Environment variable")
    return unresolvable(error) if unset else None
