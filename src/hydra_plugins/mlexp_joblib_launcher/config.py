"""mlexp's Hydra entries, under names of their own: `hydra/launcher=mlexp_joblib` and `hydra/sweeper=mlexp_optuna`.

Names of their own, because Hydra imports the stock plugins' config modules in no set order (again after ours
when PYTHONPATH holds src/, as SageMaker's code channel runs): a stock name we stored would be stored over.
"""

from dataclasses import dataclass

from hydra.core.config_store import ConfigStore
from hydra_plugins.hydra_joblib_launcher.config import JobLibLauncherConf
from hydra_plugins.hydra_optuna_sweeper.config import OptunaSweeperConf


@dataclass
class ResilientJobLibLauncherConf(JobLibLauncherConf):
    _target_: str = "hydra_plugins.mlexp_joblib_launcher.launcher.ResilientJoblibLauncher"


@dataclass
class SummarisingOptunaSweeperConf(OptunaSweeperConf):
    _target_: str = "hydra_plugins.mlexp_joblib_launcher.optuna_sweeper.SummarisingOptunaSweeper"


ConfigStore.instance().store(
    group="hydra/launcher", name="mlexp_joblib", node=ResilientJobLibLauncherConf, provider="mlexp"
)
ConfigStore.instance().store(
    group="hydra/sweeper", name="mlexp_optuna", node=SummarisingOptunaSweeperConf, provider="mlexp"
)
