"""Whether an override's value fits its key, judged by applying it as Hydra does: the one line for one that does not
(`model.epochs=abc`), with the schema's reason and the fix."""

from __future__ import annotations

from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.core.override_parser.types import Override, OverrideType
from hydra.errors import HydraException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from mlexp.errors import ConfigError


def error_applying(cfg: DictConfig, override: Override) -> HydraException | OmegaConfBaseException | None:
    """Hydra's error applying `override` to `cfg` (changed in place), None when it applies."""
    try:
        ConfigLoaderImpl._apply_overrides_to_config([override], cfg)
    except (HydraException, OmegaConfBaseException) as error:
        return error
    return None


def misfit(line: str, key: str, value: str, error: BaseException, *, values: str = "a value") -> ConfigError:
    """The one line for a value its key cannot take: the override, the value, the schema's reason, the fix."""
    cause = str(error.__cause__ or error).strip().splitlines()[0]
    shown = f"the value {value}" if value else "an empty value"
    return ConfigError(f"{line}: {shown} does not fit {key} ({cause}); give {key} {values} it accepts")


def check_value(cfg: DictConfig, override: Override) -> None:
    """Raise the one line for an override Hydra cannot apply to `cfg`: a value its key cannot take (misfit), or
    Hydra's own reason for a `+`, `++` or `~` it refuses."""
    error = error_applying(cfg, override)
    if error is None:
        return
    key = override.key_or_group
    line = override.input_line or key
    if override.type != OverrideType.CHANGE:
        reason = "; ".join(part.strip().rstrip(".") for part in str(error).splitlines() if part.strip())
        raise ConfigError(f"{line}: {reason}") from None
    raise misfit(line, key, override.get_value_element_as_str(), error) from None
