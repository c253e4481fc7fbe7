"""What deleting an experiment removes, or removed, as `mlexp delete` prints it."""

from __future__ import annotations

from collections.abc import Sized
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class DeletionReport:
    """What deleting an experiment removes (`deleted=False`: nothing touched yet) or removed."""

    experiment: str
    tracking_uri: str
    trials: list[str] = field(default_factory=list)
    components: list[str] = field(default_factory=list)
    sweep_records: list[str] = field(default_factory=list)
    other_runs: list[str] = field(default_factory=list)
    logged_models: list[str] = field(default_factory=list)
    model_versions: list[str] = field(default_factory=list)  # "<registered model>/<version>"
    registered_models: list[str] = field(default_factory=list)  # those left without a version, removed whole
    shared_preprocessing: list[Path] = field(default_factory=list)
    running: int = 0
    # trials of other experiments that reused a Pre-processing component deleted here
    linked_elsewhere: int = 0
    permanent: bool = True  # False on a server: renamed and marked deleted, purged by its `mlflow gc`
    deleted: bool = False
    renamed_to: str | None = None
    moved_aliases: list[str] = field(default_factory=list)
    kept_artifacts: list[str] = field(default_factory=list)  # artifact stores that refused a delete, with why

    def contents(self) -> str:
        """Counts of what the experiment holds, in one phrase."""
        parts = [f"{count(self.trials, 'trial')} with {count(self.components, 'component')}"]
        if self.other_runs:
            parts.append(count(self.other_runs, "other run"))
        if self.sweep_records:
            parts.append(count(self.sweep_records, "sweep record"))
        if self.model_versions:
            versions = count(self.model_versions, "registered model version")
            parts.append(f"{versions} ({', '.join(self.model_versions)})")
        if self.shared_preprocessing:
            parts.append(count(self.shared_preprocessing, "shared pre-processing output"))
        phrase = ", ".join(parts)
        if self.running:
            phrase += f"; {self.running} of its runs still RUNNING"
        if self.linked_elsewhere == 1:
            phrase += "; 1 trial of another experiment keeps its results but loses the Pre-processing it reused"
        elif self.linked_elsewhere:
            phrase += (
                f"; {self.linked_elsewhere} trials of other experiments keep their results but lose the Pre-processing "
                "they reused"
            )
        return phrase

    def __str__(self) -> str:
        if not self.deleted:
            return f"experiment {self.experiment!r} in {self.tracking_uri}: {self.contents()}"
        how = "for good" if self.permanent else f"(renamed {self.renamed_to!r} and marked deleted on the server)"
        lines = [f"deleted experiment {self.experiment!r} {how}: {self.contents()}"]
        lines += [f"  removed registered model {name} (no version left)" for name in self.registered_models]
        lines += [f"  moved {alias}" for alias in self.moved_aliases]
        lines += [f"  artifacts kept: {reason}" for reason in self.kept_artifacts]
        lines.append(f"  the name {self.experiment!r} can be used again")
        return "\n".join(lines)


def count(items: Sized | int, noun: str) -> str:
    """`3 trials`, `1 trial`: a number (or how many items) with its noun."""
    number = items if isinstance(items, int) else len(items)
    return f"{number} {noun}{'' if number == 1 else 's'}"
