"""The cost-based cutoff and the incentive program: hand-computed cases, solver properties, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import wrightomega

from mlexp.errors import ConfigError, DataError
from mlexp.tasks.churn_incentives import acceptance, cutoff, exact_solver, program, scipy_solver
from mlexp.tasks.churn_incentives.allocation import allocate
from mlexp.tasks.churn_incentives.config import ConvincingFactor, ConvincingRule, Optimizer, Solver
from mlexp.tasks.churn_incentives.omega import wright_omega

MODELS = [acceptance.Exponential(), acceptance.Hyperbolic()]


def test_cutoff_costs_match_a_hand_computed_case():
    churned = np.array([False, True, False, True])
    scores = np.array([0.1, 0.4, 0.6, 0.9])
    spend = np.array([10.0, 20.0, 30.0, 40.0])
    same = (churned, scores)  # the cutoff chosen on these customers too
    analysis = cutoff.analyse(churned, scores, spend, cutoff.CostModel(500, 0, 50), n_cutoffs=4, chosen_on=same)
    # cutoff 0: all four paid (4·$50); 0.25: three paid; 0.5: one churner missed ($500) + two paid;
    # 0.75: one churner missed + one paid
    assert analysis.cutoffs.tolist() == [0.0, 0.25, 0.5, 0.75]
    assert analysis.costs.tolist() == [200.0, 150.0, 600.0, 550.0]
    assert (analysis.min_cost_cutoff, analysis.test_cost, analysis.min_cost_in_sample) == (0.25, 150.0, 150.0)
    assert (analysis.customers_paid, analysis.outlay, analysis.paid_customers_spend) == (3, 150.0, 90.0)
    assert analysis.no_action_cost == 1000.0
    # a loyal customer's value counts on true negatives
    valued = cutoff.analyse(churned, scores, spend, cutoff.CostModel(500, 7, 50), n_cutoffs=4, chosen_on=same)
    assert valued.costs.tolist() == [200.0, 157.0, 607.0, 564.0]


def test_the_cutoff_is_chosen_on_validation_and_its_figures_are_the_test_splits():
    test_churned = np.array([False, True, False, True])
    test_scores = np.array([0.1, 0.4, 0.6, 0.9])
    spend = np.array([10.0, 20.0, 30.0, 40.0])
    # validation: a loyal customer at 0.3 and a churner at 0.7. Its costs by cutoff 0, 0.25, 0.5, 0.75 are
    # $100, $100, $50 (the churner paid), $500 (the churner lost): it chooses 0.5, where the test split's own
    # cheapest cutoff is 0.25 ($150) and 0.5 costs it $600 (its churner at 0.4 lost, two paid)
    validation = (np.array([False, True]), np.array([0.3, 0.7]))
    analysis = cutoff.analyse(
        test_churned, test_scores, spend, cutoff.CostModel(500, 0, 50), n_cutoffs=4, chosen_on=validation
    )
    assert analysis.costs.tolist() == [200.0, 150.0, 600.0, 550.0]  # the test split's curve
    assert analysis.min_cost_cutoff == 0.5  # validation's argmin, not the test split's 0.25
    assert analysis.test_cost == 600.0  # the test split's cost at 0.5: held out
    assert analysis.min_cost_in_sample == 150.0  # the test curve's own minimum, named as in-sample
    # paid: the test customers scoring above 0.5 (0.6 and 0.9)
    assert (analysis.customers_paid, analysis.outlay, analysis.paid_customers_spend) == (2, 100.0, 70.0)
    assert (analysis.chosen_on, analysis.customers) == (2, 4)
    lines = analysis.summary()
    assert lines[0] == "Cost is minimized near a cutoff of: 0.5 on the validation split (2 customers)."
    assert lines[1] == (
        "At that cutoff the 4 test customers (held out) cost $ 600; the test split's own minimum "
        "(in-sample, not held out) is $ 150 at 0.25."
    )
    assert lines[2].startswith("Incentive is paid to 2 of the 4 test customers")


def test_the_posts_hundred_cutoffs_span_zero_to_one():
    costs = cutoff.CostModel(500, 0, 50)
    churned, scores = np.array([True, False]), np.array([0.3, 0.1])
    analysis = cutoff.analyse(churned, scores, np.ones(2), costs, 100, chosen_on=(churned, scores))
    assert len(analysis.cutoffs) == 100
    assert analysis.cutoffs[0] == 0.0 and analysis.cutoffs[21] == 0.21 and analysis.cutoffs[-1] == 0.99
    # the churner scores 0.3: paying from cutoff 0.1 up to 0.29 costs one incentive, from 0.3 a lost customer
    assert (analysis.min_cost_cutoff, analysis.test_cost) == (0.1, 50.0)


def test_convincing_factor_follows_the_posts_band():
    alpha = np.array([0.1, 0.55, 0.7, 0.95, 0.96])
    assert acceptance.convincing_factor(alpha, ConvincingFactor()).tolist() == [100, 1, 1, 1, 100]
    constant = ConvincingFactor(rule=ConvincingRule.constant, inside=3.0)
    assert acceptance.convincing_factor(alpha, constant).tolist() == [3.0] * 5


def _problem(n: int, seed: int, budget_fraction: float, model: acceptance.AcceptanceModel) -> program.IncentiveProblem:
    rng = np.random.default_rng(seed)
    spend = rng.uniform(0.0, 120.0, n)
    alpha = np.clip(rng.beta(0.7, 1.5, n), 0.0, 1.0)
    alpha[:3] = [0.0, 1.0, 0.6]  # the edges of [0, 1] and the band
    gamma = acceptance.convincing_factor(alpha, ConvincingFactor())
    return program.IncentiveProblem(spend, alpha, gamma, budget_fraction * spend.sum(), model)


@pytest.mark.parametrize("model", MODELS, ids=["exponential", "hyperbolic"])
@pytest.mark.parametrize("budget_fraction", [0.0, 0.0005, 0.003, 0.02, 0.5])
def test_exact_allocation_fits_the_budget_beats_uniform_and_meets_kkt(model, budget_fraction):
    problem = _problem(5000, seed=1, budget_fraction=budget_fraction, model=model)
    allocation = exact_solver.solve(problem)
    c = allocation.discounts
    assert c.min() >= 0 and c.sum() <= problem.budget
    result = program.compare(problem, c)
    assert result.optimal >= result.uniform - 1e-9 * abs(result.uniform)
    assert result.optimal >= result.none - 1e-9 * abs(result.none)
    # KKT: every paid customer's marginal profit equals lambda, no unpaid one's exceeds it
    marginal = problem.marginal_profit(c)
    paid = c > 1e-9
    if budget_fraction > 0:
        assert paid.any()
        np.testing.assert_allclose(marginal[paid], allocation.multiplier, atol=1e-6 * (1 + allocation.multiplier))
        assert marginal[~paid].max() <= allocation.multiplier + 1e-9
    if allocation.multiplier > 0:
        assert c.sum() == pytest.approx(problem.budget, rel=1e-9)


def test_a_large_budget_leaves_money_unspent_at_lambda_zero():
    problem = _problem(2000, seed=2, budget_fraction=0.5, model=acceptance.Exponential())
    allocation = exact_solver.solve(problem)
    assert allocation.multiplier == 0.0
    assert 0 < allocation.discounts.sum() < problem.budget
    assert np.all(np.abs(problem.marginal_profit(allocation.discounts)[allocation.discounts > 0]) < 1e-8)


def test_more_budget_never_lowers_the_optimal_profit():
    profits = []
    for fraction in (0.0, 0.001, 0.002, 0.005, 0.01):
        problem = _problem(3000, seed=3, budget_fraction=fraction, model=acceptance.Exponential())
        profits.append(program.compare(problem, exact_solver.solve(problem).discounts).optimal)
    assert profits == sorted(profits) and profits[-1] > profits[0]


@pytest.mark.parametrize("model", MODELS, ids=["exponential", "hyperbolic"])
def test_scipy_slsqp_agrees_with_the_exact_solver_on_a_small_case(model):
    problem = _problem(60, seed=4, budget_fraction=0.002, model=model)
    exact = allocate(problem, Optimizer(solver=Solver.exact))
    slsqp = scipy_solver.solve(problem, tolerance=1e-12, max_iterations=500)
    best, other = (problem.expected_profit(a.discounts).sum() for a in (exact, slsqp))
    assert other == pytest.approx(best, rel=1e-6)
    assert best >= other - 1e-9 * best  # SLSQP does not beat the exact optimum


def _valid() -> dict:
    return {
        "spend": np.array([50.0, 60.0, 70.0]),
        "churn_probability": np.array([0.2, 0.7, 0.9]),
        "convincing": np.array([100.0, 1.0, 1.0]),
        "budget": 10.0,
        "acceptance": acceptance.Exponential(),
    }


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"budget": -1.0}, ConfigError, "negative or undefined budget; set model.incentives.budget_fraction"),
        ({"budget": float("nan")}, ConfigError, "budget is nan"),
        ({"churn_probability": np.array([0.2, 1.3, -0.1])}, DataError, "outside [0, 1] for customers 2, 3"),
        ({"spend": np.array([50.0, np.nan, 70.0])}, DataError, "spend is NaN, infinite or negative for customers 2"),
        ({"spend": np.array([50.0, 60.0, -1.0])}, DataError, "for customers 3"),
        ({"convincing": np.array([100.0, 0.0, 1.0])}, DataError, "gamma is not positive for customers 2"),
        ({"spend": np.array([50.0, 60.0])}, DataError, "1-D arrays of one length"),
    ],
)
def test_invalid_inputs_fail_before_solving(change, error, message):
    with pytest.raises(error, match=message.replace("[", r"\[").replace("]", r"\]")):
        program.IncentiveProblem(**{**_valid(), **change})


def test_infeasible_convincing_rules_are_refused():
    alpha = np.array([0.5, 0.7])
    with pytest.raises(ConfigError, match="low=0.9 is above .high=0.6"):
        acceptance.convincing_factor(alpha, ConvincingFactor(low=0.9, high=0.6))
    with pytest.raises(ConfigError, match="must be positive"):
        acceptance.convincing_factor(alpha, ConvincingFactor(outside=-5.0))
    with pytest.raises(ConfigError, match="choose one of: exponential, hyperbolic"):
        acceptance.acceptance_model("linear")


def test_wright_omega_matches_scipy_cold_and_from_warm_starts():
    x = np.concatenate([np.linspace(1.0, 5.0, 20001), np.geomspace(5.0, 1e6, 20001)])
    reference = wrightomega(x)
    assert np.max(np.abs(wright_omega(x) - reference) / reference) < 1e-14
    for shift in (0.01, 0.05, 0.3, 1.0, 4.0, 9.0):
        shifted = wright_omega(x + shift, previous=reference, shift=shift)
        assert np.max(np.abs(shifted - wrightomega(x + shift)) / shifted) < 1e-14, shift
