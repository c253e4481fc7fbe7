"""What mlexp prints after a trial, a sweep or a comparison: where to look next."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from mlexp.tracking import ui_link


def experiment_tag_writer(tracking_uri: str) -> ui_link.TagWriter | None:
    """Through the tracking writer this process is connected to, if any: it has MLflow loaded and the store open."""
    from mlexp.tracking.journal_writer import TrackingError, running_writer
    from mlexp.tracking.store import absolute_uri

    writer = running_writer()
    if writer is None:
        return None

    def tag(experiment_id: str, key: str, value: str) -> None:
        # set when the command ends; a store that refuses it is said in the writer's log, the link still works
        with contextlib.suppress(TrackingError):
            writer.request(
                cmd="experiment_tag", uri=absolute_uri(tracking_uri), experiment_id=experiment_id, key=key, value=value
            )

    return tag


def print_ui_link(
    tracking_uri: str,
    experiment_id: str,
    objective: str,
    direction: str,
    sweep_id: str | None = None,
    *,
    sweep_name: str | None = None,
    headline_metrics: Sequence[str] = (),
    params: Sequence[str] = (),
) -> None:
    """Print the MLflow UI link that opens the trials (of one sweep) best first, with their columns shown."""
    try:
        link = ui_link.publish_comparison(
            tracking_uri,
            experiment_id,
            objective=objective,
            direction=direction,
            sweep_id=sweep_id,
            sweep_name=sweep_name,
            metric_columns=headline_metrics,
            param_columns=params,
            tag_writer=experiment_tag_writer(tracking_uri),
        )
    except ui_link.NoUiAddress as error:
        print(f"MLflow UI: {error}")
        return
    if link.start_command:
        print(f"  start the UI:     {link.start_command}")
    print(f"MLflow UI: {link.url}")
