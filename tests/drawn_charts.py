"""Shared by the task chart tests: run a stage in-process on a composed config and keep the figures it draws."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import matplotlib.pyplot as plt
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from conftest import REPO
from mlexp.config import make_composable


class Untracked:
    """A tracker that records nothing: these tests read the stage's figures and files, not the store."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def task_config(task: str, *overrides: str) -> DictConfig:
    """conf/ composed for `task` with the given overrides, as a trial composes it."""
    make_composable()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose("config", overrides=[f"task={task}", *overrides])


def keep_figures(monkeypatch, charts: ModuleType) -> dict[str, plt.Figure]:
    """Make `charts` keep each figure it would save, by file name (the file is still written)."""
    figures: dict[str, plt.Figure] = {}

    def kept(figure: plt.Figure, path: Path) -> Path:
        figures[path.name] = figure
        figure.canvas.draw()  # tick labels and bar labels as they are saved
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path)
        return path

    monkeypatch.setattr(charts, "save_figure", kept)
    return figures
