"""The post's hyperparameter search (lr log-uniform, network categorical, TPE on validation mAP) as a 2-trial sweep."""

from __future__ import annotations

import pytest

from conftest import run_cli, store_client, trials_of

pytestmark = pytest.mark.slow

NETWORKS = {"ssd_300_mobilenet0.25_custom", "ssd_512_mobilenet1.0_custom"}


@pytest.mark.usefixtures("tmp_project_with_store")  # the store's first set-up is other tests' concern
def test_tpe_sweep_runs_tracked_trials_and_records_the_best_map(tmp_project):
    done = run_cli(
        tmp_project,
        "-m",
        "task=object_detection",
        "sweep=object_detection_tpe",
        "sweep.max_jobs=2",
        "sweep.max_parallel_jobs=1",
        # generated frames (dataset.path=null), tiny: 4 plays of 2 frames, all with a ball
        "dataset.n_frames=8",
        "dataset.frames_per_play=2",
        "dataset.frame_width=96",
        "dataset.frame_height=64",
        "dataset.no_ball_fraction=0",
        "dataset.ball_length=[0.1,0.15]",
        "model.input_size=96",
        "model.epochs=1",
        "model.batch_size=2",
        "model.speed_frames=1",
        "compute.num_threads=1",
    )
    trials = trials_of(tmp_project, "object_detection")
    assert len(trials) == 2 and all(t.status == "FINISHED" for t in trials)
    assert all(0.001 <= float(t.params["model.lr"]) <= 0.1 for t in trials)
    assert all(t.params["model.network"] in NETWORKS for t in trials)
    assert all(t.params["sweep.max_jobs"] == "2" for t in trials)
    # the sweep's fixed values: a 15-minute budget per job, validated once when it ends
    assert all(float(t.params["model.max_train_seconds"]) == 900 for t in trials)
    assert all(t.params["model.val_interval"] == "1000000" for t in trials)
    assert all(t.component_names - {"Pre-processing"} == {"Training", "Evaluation"} for t in trials)
    # lr and network do not change the frames: one Pre-processing component serves every trial
    assert sum("Pre-processing" in t.component_names for t in trials) == 1
    sweep = store_client(tmp_project).get_run(trials[0].tags["mlexp.sweep_id"])
    # the search maximises validation mAP; each trial's test mAP is reported beside it, never tuned on
    best = max(trials, key=lambda t: t.metrics["val_map_50"])
    assert sweep.data.metrics["best_val_map_50"] == pytest.approx(best.metrics["val_map_50"])
    assert "best_map_50" not in sweep.data.metrics and all("test_map_50" in t.metrics for t in trials)
    assert sweep.data.tags["mlexp.best_trial"] in {t.run_id for t in trials}
    assert "best trial:" in done.stdout
