"""What an engine calling AWS (engine=athena here, engine=textract in document_extraction) needs before a trial
opens: a region name boto3 takes, and credentials botocore would find. Both are judged without a request: the
credential chain is resolved as botocore resolves it, less the providers that would ask the network or run a process
(a container's or an instance's role, a credential process, a role assumed from a source), which count when their
source is there (the container's variables, an EC2 machine or a metadata endpoint set by hand, the profile's
credential_process or role_arn).

No task module is imported here, nor botocore until an AWS engine's credentials are judged: a default trial's
checks do not load it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlexp.config.constraints import Constraint, shown_value
from mlexp.errors import ConfigError

# botocore's check of a region name (botocore.utils.validate_region_name), less its empty name
REGION_NAME = re.compile(r"(?![0-9]+$)(?!-)[a-zA-Z0-9-]{1,63}(?<!-)")
# the providers of botocore's chain that fetch from an endpoint when they load
NETWORK_PROVIDERS = ("container-role", "iam-role")
# a credential_process may call a service itself: the profile naming one is enough
PROCESS_PROVIDER = "custom-process"
# a profile's role: botocore resolves its source credentials when it loads (source_profile's own chain, process
# included; credential_source's environment, container endpoint or metadata service), so the profile naming the role is
# enough. The other providers (environment, shared files, web identity, SSO, login) read files and defer their calls.
ROLE_PROVIDER = "assume-role"
# the variables that point the container-role provider at the credentials endpoint of ECS, EKS or SageMaker
CONTAINER_VARIABLES = ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI")
# how an EC2 instance names itself (Nitro: its vendor; Xen: "4.11.amazon", a uuid ec2...), as cloud-init reads it;
# its instance profile's role comes from the metadata service
EC2_SIGNS = (
    (Path("/sys/devices/virtual/dmi/id/sys_vendor"), re.compile(r"^amazon ec2")),
    (Path("/sys/devices/virtual/dmi/id/bios_version"), re.compile(r"amazon")),
    (Path("/sys/hypervisor/uuid"), re.compile(r"^ec2")),
)


def region_name_valid(region_name: str) -> bool:
    """Whether boto3 takes the name (a host label); whether the region exists, and has the service, AWS says."""
    return REGION_NAME.fullmatch(region_name) is not None


REGION_RULE = "the code of an AWS region: letters, digits and hyphens, as boto3 requires"
REGION = Constraint(
    ("engine.region_name",),
    region_name_valid,
    f"engine.region_name is {REGION_RULE}",
    "give one such as engine.region_name=us-east-1",
)


def region_error(key: str, given: object, found: str | None = None, example: str = "") -> ConfigError | None:
    """REGION's rule for another region (SageMaker's compute.region, deploy.region): the one line when boto3 would
    refuse `given`, the value of `key`, or, when none is given, `found`, the region botocore's chain found
    (AWS_DEFAULT_REGION, the profile's `region`), rather than a failed client blaming the credentials. None when it
    takes them, or when there is none (the caller's "no AWS region" line). No request, no botocore import."""
    example = example or f"{key}=us-east-1"
    if given:
        if region_name_valid(str(given)):
            return None
        return ConfigError(f"{key}={given}: {key} is {REGION_RULE}; give one such as {example}")
    if found and not region_name_valid(found):
        return ConfigError(
            f"the AWS region botocore found ({found!r}: AWS_DEFAULT_REGION, or the AWS profile's region) is not "
            f"{REGION_RULE}; correct it, or give one such as {example}"
        )
    return None


def _on_ec2() -> bool:
    """Whether this machine says it is an EC2 instance (read from /sys, as cloud-init does; no request)."""
    for path, sign in EC2_SIGNS:
        try:
            if sign.search(path.read_text(errors="replace").strip().lower()):
                return True
        except OSError:
            continue
    return False


def credentials_found() -> bool:
    """Whether botocore's credential chain finds credentials (environment, shared files, a profile's role, SSO or
    login session, web identity), judged offline: a credential process, a role's source credentials, the container's
    endpoint and the instance's metadata service are not asked, they count when configured (the process, the role_arn,
    the container's variables, a metadata endpoint) or likely (an EC2 machine). True also when the set-up is broken
    (an AWS_PROFILE ~/.aws lacks, a role without its source): the engine reports that."""
    import botocore.session
    from botocore.exceptions import BotoCoreError

    session = botocore.session.get_session()
    try:
        profile = session.get_scoped_config()  # AWS_PROFILE's, or the default profile
        if profile.get("credential_process") or _assumes_role(profile):
            return True
        resolver = session.get_component("credential_provider")
        for name in (*NETWORK_PROVIDERS, PROCESS_PROVIDER, ROLE_PROVIDER):
            resolver.remove(name)
        if resolver.load_credentials() is not None:
            return True
        metadata_endpoint = session.get_config_variable("ec2_metadata_service_endpoint")
    except BotoCoreError:
        return True
    return any(os.environ.get(variable) for variable in CONTAINER_VARIABLES) or _instance_role(metadata_endpoint)


def _assumes_role(profile: dict[str, Any]) -> bool:
    """Whether botocore's assume-role provider takes the profile: a role_arn (its source_profile or
    credential_source, or the lack of one, is that provider's to judge), unless a web identity token file assumes it."""
    return "role_arn" in profile and "web_identity_token_file" not in profile


def _instance_role(metadata_endpoint: object) -> bool:
    """Whether the metadata service would be asked for an instance's role: on an EC2 machine, or at an endpoint set by
    hand (AWS_EC2_METADATA_SERVICE_ENDPOINT, ec2_metadata_service_endpoint: an emulator such as aws-vault's)."""
    if os.environ.get("AWS_EC2_METADATA_DISABLED", "").lower() == "true":
        return False
    return bool(metadata_endpoint) or _on_ec2()


@dataclass(frozen=True)
class AwsCredentials(Constraint):
    """The credentials an engine calls AWS with: a rule on where the trial runs rather than on its keys (its key,
    engine.name, says which engine runs; botocore is imported for that engine alone), refused before the trial opens
    with the line the engine itself gives when it meets no credentials (`line`)."""

    line: str = ""

    def shown(self, values: Sequence[Any]) -> str:
        return f"engine={shown_value(values[0])}"

    def refusal(self, values: Sequence[Any]) -> ConfigError | None:
        return None if self.explanation(values) is None else ConfigError(self.line)
