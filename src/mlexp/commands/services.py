"""`mlexp keys`, `review`, `predict`, `undeploy`: commands of deployed services, each parsing its own flags."""

from __future__ import annotations

USAGE = {
    "keys": "mlexp keys create <name> [--limit N] [--period month|day] | list | revoke <name>",
    "review": "mlexp review [--store PATH|URL] add <name> | remove <name> | list | export | label-studio-export | ...",
    "predict": "mlexp predict <task or endpoint> [--file request.json] [--content-type T] [--accept T] [--region R]",
    "undeploy": "mlexp undeploy <task or endpoint> [--region R]",
}


def run_keys(argv: list[str]) -> int:
    """API keys and usage plans of the local services (`deploy=local`)."""
    from mlexp.serving.http.keys_command import main

    return main(argv)


def run_review(argv: list[str]) -> int:
    """Reviewer accounts and review exports of the text_classification service."""
    from mlexp.tasks.text_classification.service.review_command import main

    return main(argv)


def run_predict(argv: list[str]) -> int:
    """Send a request to a deploy=sagemaker endpoint (InvokeEndpoint) and print its answer."""
    from mlexp.sagemaker.endpoint_commands import predict

    return predict(argv)


def run_undeploy(argv: list[str]) -> int:
    """Delete a deploy=sagemaker endpoint, its endpoint config and its model."""
    from mlexp.sagemaker.endpoint_commands import undeploy

    return undeploy(argv)
