"""The quality benchmark the README gives for the three detector families runs end to end at a tiny size: one
trial per family through the command line, each stopped by its CPU budget, and the side-by-side table."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from conftest import REPO
from object_detection_tiny import TINY_TILED_TRIAL


def test_the_quality_benchmark_trains_each_family_and_prints_the_table():
    # 0.034 CPU-minutes on 2 threads: 1 s of training per family, then the test split once
    benchmark = str(REPO / "benchmarks/object_detection_quality.py")
    done = subprocess.run(
        [sys.executable, benchmark, "--cpu-minutes", "0.034", *TINY_TILED_TRIAL],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "budget 0.034 CPU-minutes = 1 s of training on 2 threads per family; seed=2028" in done.stdout
    table = done.stdout[done.stdout.index("family       test mAP@.5") :].splitlines()
    rows = {line.split()[0]: line.split() for line in table[1:4]}
    assert set(rows) == {"ssd", "yolo3", "faster_rcnn"}
    for family, row in rows.items():
        test_map, epochs, train_s = float(row[1]), int(row[4]), float(row[5])
        assert 0.0 <= test_map <= 1.0 and epochs >= 1 and train_s >= 1, (family, row)
    assert rows["ssd"][-1].endswith("%")  # the share of an SSD inference spent decoding and in NMS
    assert "ratio: yolo3 test mAP@0.5 / ssd's" in done.stdout or float(rows["ssd"][1]) == 0.0
    assert "Warning" not in done.stderr, done.stderr[-3000:]  # neither the trials nor the benchmark's own measure


def test_the_quality_benchmark_measures_each_trials_kept_model_never_its_checkpoint(tmp_path: Path):
    spec = importlib.util.spec_from_file_location("od_quality", REPO / "benchmarks/object_detection_quality.py")
    assert spec is not None and spec.loader is not None
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    run = tmp_path / "outputs" / "object_detection" / "2026-12-04_13-23-00"
    for folder in ("models/checkpoint", "models"):  # both hold a model.params
        (run / folder).mkdir(parents=True, exist_ok=True)
        (run / folder / "model.params").write_bytes(b"")
    assert benchmark._model_folders(tmp_path) == [run / "models"]
