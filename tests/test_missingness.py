"""Missingness mechanisms and bundled tables used by the evaluation entry points."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from impute_dgm.datasets import load_table
from impute_dgm.missingness import ampute


@pytest.fixture
def correlated():
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(4000, 1))
    return latent @ rng.normal(size=(1, 6)) + 0.5 * rng.normal(size=(4000, 6))


@pytest.mark.parametrize("mechanism", ["mcar", "mar", "mnar"])
def test_rate_is_met_and_observed_values_kept(correlated, mechanism):
    X_missing = ampute(correlated, 0.3, mechanism, random_state=0)
    missing = np.isnan(X_missing)
    assert missing.mean() == pytest.approx(0.3, abs=0.02)
    assert np.array_equal(X_missing[~missing], correlated[~missing])
    assert np.array_equal(ampute(correlated, 0.3, mechanism, random_state=0), X_missing, True)


def test_mechanisms_differ_in_what_missingness_depends_on(correlated):
    mnar = np.isnan(ampute(correlated, 0.3, "mnar", random_state=0))
    # Self-masking: removed values are larger than kept ones, column by column.
    for j in range(correlated.shape[1]):
        assert correlated[mnar[:, j], j].mean() > correlated[~mnar[:, j], j].mean() + 0.5

    mar = np.isnan(ampute(correlated, 0.3, "mar", random_state=0))
    complete = ~mar.any(axis=0)
    assert complete.sum() == 3  # half the columns stay complete
    for j in np.flatnonzero(~complete):  # ... and predict the other columns' missingness
        model = LogisticRegression().fit(correlated[:, complete], mar[:, j])
        auc = roc_auc_score(mar[:, j], model.predict_proba(correlated[:, complete])[:, 1])
        assert auc > 0.7

    mcar = np.isnan(ampute(correlated, 0.3, "mcar", random_state=0))
    model = LogisticRegression().fit(correlated, mcar[:, 0])
    assert roc_auc_score(mcar[:, 0], model.predict_proba(correlated)[:, 1]) < 0.6


def test_every_column_keeps_a_value_and_bad_input_is_refused():
    X = np.arange(6.0).reshape(3, 2)
    assert (~np.isnan(ampute(X, 0.95, "mcar", random_state=0))).any(axis=0).all()
    with pytest.raises(ValueError, match="complete"):
        ampute(np.array([[np.nan, 1.0]]), 0.1)
    with pytest.raises(ValueError, match="rate"):
        ampute(X, 1.0)
    with pytest.raises(ValueError, match="mechanism"):
        ampute(X, 0.1, "sometimes")


def test_load_table_bundled_and_csv(tmp_path):
    X, y = load_table("iris")
    assert X.shape == (150, 4) and len(y) == 150
    X.iloc[:10].to_csv(tmp_path / "t.csv", index=False)
    again, target = load_table(tmp_path / "t.csv")
    assert target is None and np.allclose(again.to_numpy(), X.iloc[:10].to_numpy())
    with pytest.raises(ValueError, match="neither a bundled data set"):
        load_table("mnist")


@pytest.mark.parametrize("mechanism", ["mcar", "mar", "mnar"])
def test_ampute_dataframe_keeps_types_and_observed_cells(mechanism):
    import pandas as pd

    rng = np.random.default_rng(1)
    n = 3000
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "count": rng.poisson(3, size=n),
            "flag": rng.random(n) < 0.4,
            "colour": pd.Categorical(rng.choice(["red", "green", "blue"], size=n)),
            "name": pd.array(rng.choice(["a", "b"], size=n), dtype="string"),
        },
        index=pd.RangeIndex(10, 10 + n),
    )
    amputed = ampute(frame, 0.3, mechanism, random_state=0)
    missing = amputed.isna().to_numpy()
    assert missing.mean() == pytest.approx(0.3, abs=0.03)
    assert list(amputed.columns) == list(frame.columns)
    assert amputed.index.equals(frame.index)
    # Columns that cannot hold a missing value become their nullable counterparts.
    assert amputed["count"].dtype == "Int64" and amputed["flag"].dtype == "boolean"
    assert amputed["colour"].dtype == frame["colour"].dtype
    assert amputed["name"].dtype == frame["name"].dtype and amputed["x"].dtype == float
    for j, name in enumerate(frame.columns):
        kept = ~missing[:, j]
        assert (amputed[name][kept].astype(object) == frame[name][kept].astype(object)).all()
    if mechanism == "mnar":
        # Self-masking on codes: the largest code ("red") goes missing more than the smallest.
        codes = frame["colour"].cat.codes.to_numpy()
        lost = amputed["colour"].isna().to_numpy()
        assert lost[codes == 2].mean() > lost[codes == 0].mean() + 0.1
    with pytest.raises(ValueError, match="count"):
        ampute(amputed[["count"]].astype("Int64"), 0.3)
