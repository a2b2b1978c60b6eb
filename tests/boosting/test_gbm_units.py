"""The booster's pieces against direct computations on rows: split gain, leaf values,
monotone constraints, the tree file, path contributions, scikit-learn on the same bins."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from fl_credit.boosting.binning import Layout, agreed_layout
from fl_credit.boosting.builder import boost
from fl_credit.boosting.explain import path_contributions
from fl_credit.boosting.histogram import level_vector, party_rows, split_level
from fl_credit.boosting.pooled import fit_pooled, fit_sklearn, row_source
from fl_credit.boosting.splits import TreeParams, best_split
from fl_credit.boosting.tree import Tree, TreeEnsemble, load_json, save_json
from fl_credit.config.schema import ExperimentConfig, ModelConfig
from fl_credit.data.prepare import prepare
from fl_credit.data.scaling import pooled_standardizer
from fl_credit.run import baselines

PARAMS = TreeParams(
    depth=1, learning_rate=0.5, reg_lambda=1.0, gamma=0.0, min_child_weight=0.5, monotone=(0, 0, 0)
)


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 3))
    y = (x[:, 1] + 0.5 * rng.normal(size=400) > 0.8).astype(float)
    edges = tuple(np.r_[-np.inf, np.linspace(-2, 2, 9), np.inf] for _ in range(3))
    return x, y, Layout(edges)


def brute_force_gain(x, y, layout, lam, gamma):
    """Every (feature, edge) split's gain computed from the rows themselves."""
    g, h = 0.5 - y, np.full(len(y), 0.25)  # log-odds 0: p = 0.5
    best = (-np.inf, None)
    for j, e in enumerate(layout.edges):
        for b in range(len(e) - 2):
            left = x[:, j] < e[b + 1]
            if h[left].sum() < PARAMS.min_child_weight or h[~left].sum() < PARAMS.min_child_weight:
                continue

            def term(m):
                return g[m].sum() ** 2 / (h[m].sum() + lam)

            gain = 0.5 * (term(left) + term(~left) - term(np.ones(len(y), bool))) - gamma
            if gain > best[0] + 1e-12:
                best = (gain, (j, b))
    return best


def test_split_is_the_best_xgboost_gain_over_the_rows(small):
    x, y, layout = small
    rows = party_rows(x, y, x[:10], y[:10], layout, 1.0)
    root = Tree()
    root.add_node(0.0, 0.0, 0.0)
    hist, _ = split_level(level_vector(rows, TreeEnsemble(0.0), root, [0], layout), 1, layout)
    totals = tuple(hist[0][: layout.bins_of(0)].sum(axis=0))
    split = best_split(hist[0], totals, (-np.inf, np.inf), layout, PARAMS)
    gain, (j, b) = brute_force_gain(x, y, layout, PARAMS.reg_lambda, PARAMS.gamma)
    assert (split.feature, split.bin) == (j, b)
    assert j == 1  # the informative feature
    assert split.gain == pytest.approx(gain, rel=1e-12)


def test_leaf_values_are_shrunk_newton_steps_of_their_rows(small):
    x, y, layout = small
    rows = party_rows(x, y, x, y, layout, 1.0)
    result = boost(
        row_source(rows, layout), layout, PARAMS, base=0.0, trees=1, patience=0, min_delta=0.0
    )
    tree = result.ensemble.trees[0]
    left = x[:, tree.feature[0]] < tree.threshold[0]
    for node, rows_in in ((tree.left[0], left), (tree.right[0], ~left)):
        g, h = (0.5 - y[rows_in]).sum(), 0.25 * rows_in.sum()
        assert tree.value[node] == pytest.approx(-0.5 * g / (h + 1.0), rel=1e-12)
        assert tree.count[node] == rows_in.sum()


@pytest.fixture(scope="module")
def lending():
    cfg = ExperimentConfig(model=ModelConfig(kind="gbm", trees=8, depth=3, patience=0))
    prepared = prepare(cfg)
    data = baselines.pooled(list(prepared.banks.values()))
    layout = agreed_layout(pooled_standardizer(data.x_train), prepared.bounds, 50)
    return cfg, prepared, data, layout


def fit(cfg, data, layout, names):
    return fit_pooled(data.x_train, data.y_train, data.x_val, data.y_val, layout, cfg, names)


def test_monotone_constraint_makes_pd_rise_with_int_rate(lending):
    cfg, prepared, data, layout = lending
    names = prepared.feature_names
    j = names.index("int_rate")
    rates = np.linspace(data.x_train[:, j].min(), data.x_train[:, j].max(), 60)

    def violations(ensemble):
        rows = np.repeat(prepared.x_test[:200], len(rates), axis=0)
        rows[:, j] = np.tile(rates, 200)
        pd_ = ensemble.predict_proba(rows).reshape(200, len(rates))
        return int((np.diff(pd_, axis=1) < -1e-12).sum())

    constrained = fit(cfg, data, layout, names).ensemble
    free_cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, increasing=()))
    free = fit(free_cfg, data, layout, names).ensemble
    assert violations(constrained) == 0
    assert violations(free) > 0  # the check can fail: without the constraint PD dips


def test_tree_file_scores_new_rows_alone(lending, tmp_path):
    cfg, prepared, data, layout = lending
    ensemble = fit(cfg, data, layout, prepared.feature_names).ensemble
    loaded = load_json(save_json(tmp_path / "model.json", ensemble))
    np.testing.assert_array_equal(
        loaded.predict_proba(prepared.x_test), ensemble.predict_proba(prepared.x_test)
    )
    assert loaded.feature_names == prepared.feature_names
    again = TreeEnsemble.from_arrays(ensemble.to_arrays())
    np.testing.assert_array_equal(again.margin(prepared.x_test), ensemble.margin(prepared.x_test))
    # Scoring on raw values equals routing on the bins the trees were grown on.
    np.testing.assert_array_equal(
        ensemble.margin(prepared.x_test), ensemble.margin_binned(layout.bin_index(prepared.x_test))
    )


def test_path_contributions_add_up_to_the_log_odds(lending):
    cfg, prepared, data, layout = lending
    ensemble = fit(cfg, data, layout, prepared.feature_names).ensemble
    contrib, offset = path_contributions(ensemble, prepared.x_test)
    np.testing.assert_allclose(
        contrib.sum(axis=1) + offset, ensemble.margin(prepared.x_test), atol=1e-10
    )
    assert np.count_nonzero(contrib.any(axis=0)) >= 3


def test_sklearn_on_the_same_bins_is_close(lending):
    cfg, prepared, data, layout = lending
    names = prepared.feature_names
    ours = fit(cfg, data, layout, names).ensemble.predict_proba(prepared.x_test)
    theirs = fit_sklearn(data.x_train, data.y_train, layout, cfg, names, 8)(prepared.x_test)
    auc_ours = roc_auc_score(prepared.y_test, ours)
    auc_theirs = roc_auc_score(prepared.y_test, theirs)
    assert abs(auc_ours - auc_theirs) < 0.03
    assert np.corrcoef(ours, theirs)[0, 1] > 0.9


def test_leaf_size_check_counts_every_row_once_per_tree(lending, tmp_path):
    from fl_credit.boosting.leaf_audit import leaf_sizes

    cfg, prepared, data, layout = lending
    ensemble = fit(cfg, data, layout, prepared.feature_names).ensemble
    path = save_json(tmp_path / "model.json", ensemble)
    check = leaf_sizes(path, prepared.banks, floor=10**6)
    assert check["leaves"] == sum(len(t.leaves()) for t in ensemble.trees)
    assert check["small_leaves"] == check["leaves"]  # every leaf is below a huge floor
    assert check["smallest_leaf_rows"] == min(
        min(t.count[n] for n in t.leaves()) for t in ensemble.trees
    )
    assert check["largest_count_gap"] == 0.0  # without DP the released counts are the true ones


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model=gbm", "dp=central", "imbalance=none"], "no bank-level DP"),
        (["model=gbm", "dp=opacus", "model.min_child_weight=0"], "min_child_weight > 0"),
        (["model=gbm", "features=woe"], "use features=standard"),
        (["model=gbm", "model.depth=9"], "model.depth must be in"),
        (["model=gbm", "strategy=krum"], "needs summed histograms"),
        (["model=gbm", "model.increasing=[int_rate]", "model.decreasing=[int_rate]"], "both"),
    ],
)
def test_bad_gbm_settings_are_one_clear_line(overrides, message):
    from fl_credit.config.compose import compose_experiment
    from fl_credit.config.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        compose_experiment(overrides)
