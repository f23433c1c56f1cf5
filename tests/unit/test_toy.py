"""The 1-D toy study (section 3, Table 1, Figure 1): closed forms, training, determinism, outputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from advtrain import toy

SMALL = dict(epochs=200, switch_epoch=150, runs=4, n_points=50, seed=3)


@pytest.fixture(scope="module")
def small_study() -> pd.DataFrame:
    return toy.run_study(**SMALL)


def _loss_grad(method, theta, x, y, d):
    """d/dtheta of the method's summed loss (Table 1, second column), written out independently."""
    g = 2 * x * (theta * x - y)
    if method == "PGD-AT":
        g = g + 2 * (x + d) * (theta * (x + d) - y)
    elif method == "LDS":
        g = g + 2 * d * (theta * (x + d) - theta * x)
    return g.sum()


def test_closed_forms_match_table1_formulas():
    x = np.array([1.0, -2.0, 0.5])
    y = np.array([0.6, -0.9, 0.2])
    d = 0.3
    sxy, sxx = (x * y).sum(), (x * x).sum()
    assert toy.theta_ols(x, y) == pytest.approx(sxy / sxx)
    assert toy.theta_pgd_at(x, y, d) == pytest.approx((2 * sxy + d * y.sum()) / (sxx + ((x + d) ** 2).sum()))
    assert toy.theta_lds(x, y, d) == pytest.approx(sxy / (sxx + 3 * d * d))
    # delta = 0: both reduce to OLS
    assert toy.theta_pgd_at(x, y, 0.0) == pytest.approx(toy.theta_ols(x, y))
    assert toy.theta_lds(x, y, 0.0) == pytest.approx(toy.theta_ols(x, y))
    with pytest.raises(ValueError):
        toy.closed_form_theta("FGSM", x, y, d)


@pytest.mark.parametrize("method", toy.METHODS)
@pytest.mark.parametrize("delta", [0.25, "per-sample"])
def test_closed_forms_are_minimisers(method, delta):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, 40)
    y = 0.5 * x + 0.1 * rng.standard_normal(40)
    d = rng.normal(0, 0.2, 40) if delta == "per-sample" else delta
    theta = toy.closed_form_theta(method, x, y, d)
    assert _loss_grad(method, theta, x, y, np.broadcast_to(d, x.shape)) == pytest.approx(0.0, abs=1e-10)


@pytest.mark.parametrize("method", toy.METHODS)
@pytest.mark.parametrize("delta", [0.2, "per-sample"])
def test_training_with_fixed_delta_reaches_closed_form(method, delta):
    x, y = toy.make_data(range(6), 60, 0.5, 0.05)
    d = np.random.default_rng(1).normal(0, 0.2, (60, 1)) if delta == "per-sample" else delta
    expected = toy.closed_form_theta(method, x, y, d, axis=0)
    shift = np.abs(expected - toy.theta_ols(x, y, axis=0))
    if method != "OLS":
        assert shift.min() > 5e-3  # the perturbation moves the estimate visibly
    # Full-batch gradient descent converges to the minimiser itself ...
    res = toy.train(x, y, method, epochs=6000, switch_epoch=3000, lr=0.05, fixed_delta=d, update_mode="batch")
    np.testing.assert_allclose(res.theta, expected, atol=1e-6)
    # ... per-sample SGD (Algorithm 1) to within O(lr) of it.
    res = toy.train(x, y, method, epochs=400, switch_epoch=200, lr=5e-4, fixed_delta=d, update_mode="sample")
    np.testing.assert_allclose(res.theta, expected, atol=1e-3)
    if method != "OLS":
        assert np.all(np.abs(res.theta - expected) < 0.2 * shift)


def test_ols_epoch_map_equals_stepwise_sgd():
    x, y = toy.make_data([0, 1], 30, 0.5, 0.1)
    a, b = toy._ols_epoch_map(x, y, 0.005, "sample")
    theta = np.array([0.2, -0.3])
    stepped = theta.copy()
    for xi, yi in zip(x, y, strict=True):
        stepped = stepped - 0.005 * 2 * xi * (stepped * xi - yi)
    np.testing.assert_allclose(a * theta + b, stepped, rtol=1e-13, atol=1e-15)


def test_ols_recovers_theta_for_small_noise():
    seeds = toy.run_seeds(10, 0)
    x, y = toy.make_data(seeds, 100, 0.5, 0.01)
    res = toy.train(x, y, "OLS", epochs=2000, switch_epoch=1750, lr=0.005, seeds=seeds)
    assert np.all(np.abs(res.theta - 0.5) < 0.01)
    np.testing.assert_allclose(res.theta, toy.theta_ols(x, y, axis=0), atol=1e-3)


def test_switch_epoch_is_respected():
    seeds = toy.run_seeds(5, 7)
    x, y = toy.make_data(seeds, 40, 0.5, 0.1)
    kw = dict(epochs=120, switch_epoch=80, lr=0.005, seeds=seeds)
    runs = {m: toy.train(x, y, m, **kw) for m in toy.METHODS}
    ols = runs["OLS"].trajectory
    for method in ("PGD-AT", "LDS"):
        traj = runs[method].trajectory
        assert traj.shape == (121, 5)
        np.testing.assert_array_equal(traj[:81], ols[:81])
        assert np.all(traj[81] != ols[81])  # the method's own loss from the next epoch on
        assert runs[method].deltas.shape == (40, 40, 5)


def test_perturbations_respect_bound_and_ascend():
    seeds = toy.run_seeds(3, 0)
    x, y = toy.make_data(seeds, 40, 0.5, 0.1)
    kw = dict(epochs=30, switch_epoch=20, seeds=seeds, epsilon=0.05, step_size=1.0, init_std=0.01)
    pgd = toy.train(x, y, "PGD-AT", **kw)
    lds = toy.train(x, y, "LDS", **kw)
    for res in (pgd, lds):
        assert np.abs(res.deltas).max() <= 0.05 + 1e-15
    # PGD-AT pushes delta along the residual (worse fit), so |delta| grows well beyond its initial spread;
    # LDS only scales the initial draw up (its gradient is 2 theta^2 delta).
    assert np.abs(pgd.deltas).mean() > 3 * 0.01
    no_ascent = toy.train(x, y, "LDS", **{**kw, "step_size": 0.0})
    assert np.abs(lds.deltas).mean() > np.abs(no_ascent.deltas).mean()


def test_data_shared_across_sigma_and_seeded():
    x1, y1 = toy.make_data([4, 5], 20, 0.5, 0.01)
    x2, y2 = toy.make_data([4, 5], 20, 0.5, 0.1)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_allclose((y2 - 0.5 * x2), 10 * (y1 - 0.5 * x1))
    x3, _ = toy.make_data([5], 20, 0.5, 0.01)
    np.testing.assert_array_equal(x3[:, 0], x1[:, 1])  # a run's data depends only on its own seed


def test_study_is_deterministic(small_study):
    again = toy.run_study(**SMALL)
    pd.testing.assert_frame_equal(small_study, again)
    other = toy.run_study(**{**SMALL, "seed": 4})
    assert not np.allclose(other["theta"].to_numpy(), small_study["theta"].to_numpy())


def test_study_frame(small_study):
    df = small_study
    assert len(df) == 2 * 3 * SMALL["runs"]
    assert list(df["method"].cat.categories) == list(toy.METHODS)
    assert set(df["seed"]) == set(toy.run_seeds(SMALL["runs"], SMALL["seed"]))
    # all methods share the OLS phase
    at_switch = df.pivot_table(
        index=["sigma", "run"], columns="method", values="theta_at_switch", observed=True
    )
    assert np.all(at_switch.nunique(axis=1) == 1)
    ols = df[df["method"] == "OLS"]
    np.testing.assert_allclose(ols["theta_closed_form"], ols["theta_ols_closed_form"])
    np.testing.assert_allclose(df["theta"], df["theta_closed_form"], atol=0.03)


def test_tables_and_figure(small_study, tmp_path):
    numeric, display = toy.summarise(small_study)
    assert list(numeric["method"]) == list(toy.METHODS) * 2
    assert (numeric["n_runs"] == SMALL["runs"]).all()
    assert "±" in display["theta trained"].iloc[0]
    paths = toy.write_table1(small_study, tmp_path / "tables" / "table1_toy")
    assert [p.suffix for p in paths] == [".csv", ".md", ".tex"]
    assert all(p.stat().st_size > 0 for p in paths)
    assert len(pd.read_csv(paths[0])) == 6
    figs = toy.plot_distributions(small_study, tmp_path / "figures" / "figure1_toy")
    assert [p.suffix for p in figs] == [".png", ".pdf"]
    assert figs[0].read_bytes()[:4] == b"\x89PNG"


def test_invalid_arguments():
    x, y = toy.make_data([0], 10, 0.5, 0.1)
    with pytest.raises(ValueError):
        toy.train(x, y, "OLS", epochs=10, switch_epoch=11)
    with pytest.raises(ValueError):
        toy.train(x, y, "LDS", update_mode="minibatch")
    with pytest.raises(ValueError):
        toy.train(x, y, "LDS", seeds=[1, 2])


def test_gaussian_kde_is_a_density():
    vals = np.random.default_rng(0).normal(0.5, 0.02, 25)
    grid = np.linspace(0.3, 0.7, 2001)
    dens = toy.gaussian_kde(vals, grid)
    assert np.all(dens >= 0)
    assert np.trapezoid(dens, grid) == pytest.approx(1.0, abs=1e-3)
