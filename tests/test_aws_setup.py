"""The AWS set-up engine=athena and engine=textract need, judged before a trial opens (aws_setup): without a request,
and without importing botocore for a trial of another engine."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import pytest

from conftest import REPO
from mlexp import aws_setup

ROLE = "role_arn = arn:aws:iam::123456789012:role/r\n"


@pytest.fixture
def no_aws(tmp_path, monkeypatch):
    """No credentials anywhere botocore looks, no EC2 machine, no connection and no process possible: a request or a
    process started fails the test."""
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("HOME", str(tmp_path))
    vendor = tmp_path / "sys_vendor"
    vendor.write_text("QEMU\n")
    monkeypatch.setattr(aws_setup, "EC2_SIGNS", ((vendor, re.compile("^amazon ec2")),))
    connections = []

    def refuse(self, address):
        connections.append(address)
        raise OSError(f"no request in this test: {address!r}")

    def no_process(self, args, *rest, **kwargs):
        processes.append(args)
        raise OSError(f"no process in this test: {args!r}")

    processes = []
    monkeypatch.setattr(socket.socket, "connect", refuse)
    # however Popen was bound (botocore's ProcessProvider keeps its own reference), it starts a child here
    monkeypatch.setattr(subprocess.Popen, "_execute_child", no_process)
    yield tmp_path
    assert connections == []
    assert processes == []


def test_no_credentials_are_found_without_a_request(no_aws):
    assert aws_setup.credentials_found() is False


@pytest.mark.parametrize(
    ("variables", "config"),
    [
        ({"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"}, ""),
        ({"AWS_PROFILE": "dev"}, "[profile dev]\naws_access_key_id = x\naws_secret_access_key = y\n"),
        # a role assumed from another profile, an SSO login: their calls come when the engine calls AWS
        (
            {"AWS_PROFILE": "dev"},
            "[profile base]\naws_access_key_id = x\naws_secret_access_key = y\n"
            "[profile dev]\nrole_arn = arn:aws:iam::123456789012:role/r\nsource_profile = base\n",
        ),
        (
            {"AWS_PROFILE": "dev"},
            "[profile dev]\nsso_start_url = https://d.awsapps.com/start\nsso_region = us-east-1\n"
            "sso_account_id = 123456789012\nsso_role_name = r\n",
        ),
        # a credential process counts as configured: it is not run (it may call a service itself)
        ({"AWS_PROFILE": "dev"}, "[profile dev]\ncredential_process = sh -c 'touch {ran}; exit 1'\n"),
        # a role's source credentials are not fetched either: the profile naming the role and its source is enough
        ({"AWS_PROFILE": "dev"}, f"[profile dev]\n{ROLE}credential_source = Ec2InstanceMetadata\n"),
        ({}, f"[default]\n{ROLE}credential_source = Ec2InstanceMetadata\n"),
        (
            {"AWS_PROFILE": "dev", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:9911/credentials"},
            f"[profile dev]\n{ROLE}credential_source = EcsContainer\n",
        ),
        (
            {"AWS_PROFILE": "dev"},
            "[profile base]\ncredential_process = sh -c 'touch {ran}; exit 1'\n"
            f"[profile dev]\n{ROLE}source_profile = base\n",
        ),
        # the endpoints of a container's role and of an instance's role are not asked
        ({"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/x"}, ""),
        # a metadata service set by hand (an emulator such as `aws-vault exec --ec2-server`) is an instance's
        ({"AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:9912/"}, ""),
        ({}, "[default]\nec2_metadata_service_endpoint = http://127.0.0.1:9912/\n"),
        # a profile ~/.aws lacks: the engine's connection says so
        ({"AWS_PROFILE": "missing"}, ""),
    ],
)
def test_credentials_are_found_as_botocore_would_find_them_without_a_request(no_aws, monkeypatch, variables, config):
    ran = no_aws / "ran"
    (no_aws / "config").write_text(config.format(ran=ran))
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert aws_setup.credentials_found() is True
    assert not ran.exists()


def test_an_ec2_machine_counts_as_its_instance_role_without_asking_the_metadata_service(no_aws, monkeypatch):
    (no_aws / "sys_vendor").write_text("Amazon EC2\n")
    assert aws_setup.credentials_found() is True
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # botocore would not ask it either
    assert aws_setup.credentials_found() is False
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9912/")  # nor an emulator
    assert aws_setup.credentials_found() is False


def test_the_default_engines_rules_import_no_botocore():
    # a default trial's start-up is measured: only engine=athena or engine=textract loads botocore before it opens
    script = f"""
import sys
from hydra import compose, initialize_config_dir
from mlexp import tasks
from mlexp.config import make_composable
from mlexp.config.constraints import check_constraints
make_composable()
for task in ("anomaly_detection", "document_extraction"):
    with initialize_config_dir(config_dir={str(REPO / "conf")!r}, version_base="1.3"):
        cfg = compose("config", overrides=[f"task={{task}}"])
    check_constraints(cfg, tasks.get(task).constraints)
print("botocore" in sys.modules, "boto3" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO)
    assert done.stdout.strip() == "False False", done.stderr
