"""How likely an incentive sways a customer, and the convincing factor gamma of each customer.

An acceptance model gives s(c) = 1 - beta(c), the probability that a customer offered c is *not*
swayed, with s(0) = 1 and s'(0) = -1/gamma (gamma sets the scale of a first dollar's effect; the
exact solver uses this to set aside customers no incentive pays for). Every model here has s
decreasing and convex in c, which makes each customer's expected
profit (P - c)(1 - alpha·s(c)) concave on [0, P] — what the exact solver relies on. Each model
also solves its own first-order condition E'(c) = lambda in closed form, lambda being the budget's
Lagrange multiplier, and that solution c(lambda) is convex in lambda (the exact solver's Newton
iteration relies on it).
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np

from mlexp.errors import ConfigError
from mlexp.tasks.churn_incentives.config import Acceptance, ConvincingFactor, ConvincingRule
from mlexp.tasks.churn_incentives.config_rules import band_in_order
from mlexp.tasks.churn_incentives.omega import wright_omega


class Response(Protocol):
    """The remaining customers' optimal incentives as a function of the multiplier lambda."""

    def at(self, lam: float) -> tuple[np.ndarray, np.ndarray]:
        """(c, dc/dlambda) solving E'(c) = lambda; c <= 0 means no incentive at this lambda."""

    def keep(self, mask: np.ndarray) -> None:
        """Drop the customers where mask is False."""


class AcceptanceModel(Protocol):
    def not_swayed(self, c: np.ndarray, gamma: np.ndarray) -> np.ndarray:
        """s(c): probability that a customer offered c still churns if they meant to."""

    def not_swayed_slope(self, c: np.ndarray, gamma: np.ndarray) -> np.ndarray:
        """ds/dc."""

    def best_response(self, spend: np.ndarray, alpha: np.ndarray, gamma: np.ndarray) -> Response:
        """The closed-form solution of E'(c) = lambda for these customers (alpha > 0)."""

    def gekko_not_swayed(self, model: Any, c: Any, gamma: float) -> Any:
        """s(c) as a GEKKO expression."""


class Exponential:
    """The post: beta(c) = 1 - exp(-c / gamma)."""

    def not_swayed(self, c: np.ndarray, gamma: np.ndarray) -> np.ndarray:
        return np.exp(-c / gamma)

    def not_swayed_slope(self, c: np.ndarray, gamma: np.ndarray) -> np.ndarray:
        return -np.exp(-c / gamma) / gamma

    def best_response(self, spend: np.ndarray, alpha: np.ndarray, gamma: np.ndarray) -> Response:
        return _ExponentialResponse(spend, alpha, gamma)

    def gekko_not_swayed(self, model: Any, c: Any, gamma: float) -> Any:
        return model.exp(-c / gamma)


class _ExponentialResponse:
    # alpha·e^(-c/g)·(1 + (P - c)/g) = 1 + lambda. With w = 1 + (P - c)/g this is w·e^w = e^x, so w is the
    # Wright omega function of x = ln(1 + lambda) + 1 + P/g - ln(alpha), i.e. Lambert's W of
    # (1 + lambda)·e^(1 + P/g)/alpha: concave in lambda, which makes c = P + g(1 - w) convex in lambda.
    # Only ln(1 + lambda) changes between calls, so each call starts from the previous w.
    def __init__(self, spend: np.ndarray, alpha: np.ndarray, gamma: np.ndarray) -> None:
        self.spend, self.gamma = spend, gamma
        self.base = 1.0 + spend / gamma - np.log(alpha)
        self.w: np.ndarray | None = None
        self.shift = 0.0

    def at(self, lam: float) -> tuple[np.ndarray, np.ndarray]:
        shift = math.log1p(lam)
        w = wright_omega(self.base + shift, self.w, shift - self.shift)
        self.w, self.shift = w, shift
        return self.spend + self.gamma * (1.0 - w), -self.gamma * w / ((1.0 + w) * (1.0 + lam))

    def keep(self, mask: np.ndarray) -> None:
        self.spend, self.gamma, self.base = self.spend[mask], self.gamma[mask], self.base[mask]
        if self.w is not None:
            self.w = self.w[mask]


class Hyperbolic:
    """beta(c) = c / (c + gamma): a heavier tail than the post's, for sensitivity checks."""

    def not_swayed(self, c: np.ndarray, gamma: np.ndarray) -> np.ndarray:
        return gamma / (gamma + c)

    def not_swayed_slope(self, c: np.ndarray, gamma: np.ndarray) -> np.ndarray:
        return -gamma / (gamma + c) ** 2

    def best_response(self, spend: np.ndarray, alpha: np.ndarray, gamma: np.ndarray) -> Response:
        return _HyperbolicResponse(spend, alpha, gamma)

    def gekko_not_swayed(self, model: Any, c: Any, gamma: float) -> Any:
        return gamma / (gamma + c)


class _HyperbolicResponse:
    # alpha·g·(g + P)/(g + c)^2 = 1 + lambda: c = sqrt(alpha·g·(g + P)/(1 + lambda)) - g, convex in lambda
    def __init__(self, spend: np.ndarray, alpha: np.ndarray, gamma: np.ndarray) -> None:
        self.root, self.gamma = np.sqrt(alpha * gamma * (gamma + spend)), gamma

    def at(self, lam: float) -> tuple[np.ndarray, np.ndarray]:
        root = self.root / math.sqrt(1.0 + lam)
        return root - self.gamma, -root / (2.0 * (1.0 + lam))

    def keep(self, mask: np.ndarray) -> None:
        self.root, self.gamma = self.root[mask], self.gamma[mask]


MODELS: dict[Acceptance, AcceptanceModel] = {Acceptance.exponential: Exponential(), Acceptance.hyperbolic: Hyperbolic()}


def acceptance_model(name: Acceptance | str) -> AcceptanceModel:
    try:
        return MODELS[Acceptance(name)]
    except ValueError as error:
        choices = ", ".join(a.value for a in Acceptance)
        raise ConfigError(f"model.incentives.acceptance={name!r} is unknown; choose one of: {choices}") from error


def convincing_factor(alpha: np.ndarray, rule: ConvincingFactor) -> np.ndarray:
    """gamma of each customer: the post's rule is 1 for churn probability in [0.55, 0.95], else 100."""
    if not (rule.inside > 0 and rule.outside > 0 and np.isfinite(rule.inside) and np.isfinite(rule.outside)):
        raise ConfigError(
            f"model.incentives.convincing.inside={rule.inside} and .outside={rule.outside} must be positive and finite"
        )
    if ConvincingRule(rule.rule) == ConvincingRule.constant:
        return np.full(alpha.shape, float(rule.inside))
    if not band_in_order(ConvincingRule(rule.rule).value, rule.low, rule.high):
        raise ConfigError(
            f"model.incentives.convincing.low={rule.low} is above .high={rule.high}; the band needs low <= high"
        )
    inside = (alpha >= rule.low) & (alpha <= rule.high)
    return np.where(inside, float(rule.inside), float(rule.outside))
