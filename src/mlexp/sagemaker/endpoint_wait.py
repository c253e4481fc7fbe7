"""The wait for a deploy=sagemaker endpoint to be InService after CreateEndpoint or UpdateEndpoint."""

from __future__ import annotations

import time
from typing import Any

from mlexp.interrupts import sleep_obeying_signals
from mlexp.sagemaker.endpoint_errors import EndpointError

POLL_S = 15.0


def wait_in_service(endpoint: Any, seconds: float, poll_s: float = POLL_S) -> str:
    """Poll DescribeEndpoint until InService (a progress line shows the status); raises when Failed or too slow."""
    from tqdm import tqdm

    started = time.monotonic()
    name = endpoint.endpoint_name
    with tqdm(desc=f"endpoint {name}", bar_format="{desc} [{elapsed}]", leave=False, disable=None) as bar:
        while True:
            endpoint.refresh()
            status = str(endpoint.endpoint_status)
            bar.set_description_str(f"endpoint {name}: {status}")
            if status == "InService":
                return status
            if status in ("Failed", "OutOfService", "UpdateRollbackFailed"):
                raise EndpointError(
                    f"endpoint {name} is {status}: {endpoint.failure_reason}; see its CloudWatch "
                    f"logs (/aws/sagemaker/Endpoints/{name}), fix, and deploy again"
                )
            if time.monotonic() - started >= seconds:
                raise EndpointError(
                    f"endpoint {name} is still {status} after {seconds:.0f} s; it keeps going: "
                    "watch it in the SageMaker console, or deploy with a larger deploy.wait_s"
                )
            sleep_obeying_signals(poll_s)
