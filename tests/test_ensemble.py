"""SemiSupervisedEnsemble: members fitted on the same rows, probabilities pooled log-linearly."""

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.datasets import load_iris
from sklearn.pipeline import Pipeline
from sklearn.semi_supervised import LabelSpreading

from impute_dgm import SemiSupervisedEnsemble, VAEClassifier, VAEImputer


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    y_partial = np.where(np.arange(150) % 5 == 0, y, -1)
    return X, y, y_partial


def small_m2(seed=0):
    return VAEClassifier(hidden_dims=(16,), latent_dim=2, n_epochs=20, n_eval_samples=10,
                         random_state=seed)  # fmt: skip


def test_pooled_probabilities_are_the_weighted_geometric_mean(iris):
    X, y, y_partial = iris
    members = [("spread", LabelSpreading(kernel="knn", n_neighbors=7)), ("m2", small_m2())]
    pooled = SemiSupervisedEnsemble(members, weights=[3.0, 1.0]).fit(X, y_partial)
    assert np.allclose(pooled.weights_, [0.75, 0.25])
    spread = pooled.named_estimators_.spread.predict_proba(X)
    m2 = pooled.named_estimators_.m2.predict_proba(X)
    assert (spread == 0).any()  # label spreading's hard zeros: the floor keeps them finite

    def floored(p):
        p = np.maximum(p, 1e-6)
        return p / p.sum(axis=1, keepdims=True)

    by_hand = floored(spread) ** 0.75 * floored(m2) ** 0.25
    by_hand /= by_hand.sum(axis=1, keepdims=True)
    probabilities = pooled.predict_proba(X)
    assert np.allclose(probabilities, by_hand, atol=1e-12)
    assert np.array_equal(pooled.predict(X), np.argmax(by_hand, axis=1))
    # A member with weight 0 has no say.
    alone = SemiSupervisedEnsemble(members, weights=[1.0, 0.0]).fit(X, y_partial)
    assert np.array_equal(alone.predict(X), alone.named_estimators_.spread.predict(X))
    assert pooled.score(X, y) > 0.8


def test_labels_of_any_kind_and_missing_values(iris):
    X, y, y_partial = iris
    names = np.array(["setosa", "versicolor", "virginica"], dtype=object)
    y_text = np.where(y_partial == -1, "-1", names[np.maximum(y_partial, 0)]).astype(object)
    X_holes = X.copy()
    X_holes[np.random.default_rng(0).random(X.shape) < 0.2] = np.nan
    X_holes[0, np.isnan(X_holes).all(axis=0)] = 1.0
    spread = Pipeline(
        [("impute", VAEImputer(hidden_dims=(8,), n_epochs=5, random_state=0)),
         ("spread", LabelSpreading())]
    )  # fmt: skip
    pooled = SemiSupervisedEnsemble([("spread", spread), ("m2", small_m2())]).fit(X_holes, y_text)
    assert list(pooled.classes_) == list(names)
    assert np.allclose(pooled.weights_, [0.5, 0.5])  # equal weights for given members
    predicted = pooled.predict(X_holes)
    assert set(predicted) <= set(names)
    probabilities = pooled.predict_proba(X_holes)
    assert np.isfinite(probabilities).all() and np.allclose(probabilities.sum(axis=1), 1.0)


def test_default_members_are_seeded_and_documented():
    ensemble = SemiSupervisedEnsemble(random_state=0)
    names = [name for name, _ in ensemble._members()]
    assert names == ["spread", "m2"]
    spread, m2 = (member for _, member in ensemble._members())
    assert isinstance(spread.steps[0][1], VAEImputer)
    assert isinstance(spread.steps[-1][1], LabelSpreading)
    assert isinstance(m2, VAEClassifier)
    # Seeded from random_state: the same seeds every time, different for the two members.
    again = [member for _, member in SemiSupervisedEnsemble(random_state=0)._members()]
    assert spread.steps[0][1].random_state == again[0].steps[0][1].random_state
    assert m2.random_state == again[1].random_state
    assert spread.steps[0][1].random_state != m2.random_state
    assert np.allclose(ensemble._weights(2), [0.7, 0.3])


def test_reproducible_and_refuses_bad_settings(iris):
    X, _, y_partial = iris
    members = [("spread", LabelSpreading()), ("m2", small_m2())]
    first = SemiSupervisedEnsemble(members).fit(X, y_partial).predict_proba(X)
    second = clone(SemiSupervisedEnsemble(members)).fit(X, y_partial).predict_proba(X)
    assert np.array_equal(first, second)
    for weights, match in (([1.0], "one finite"), ([1.0, -1.0], "non-negative"),
                           ([0.0, 0.0], "not all be 0")):  # fmt: skip
        with pytest.raises(ValueError, match=match):
            SemiSupervisedEnsemble(members, weights=weights).fit(X, y_partial)
    with pytest.raises(ValueError, match="distinct names"):
        SemiSupervisedEnsemble([("a", LabelSpreading()), ("a", small_m2())]).fit(X, y_partial)


class _Abstains(ClassifierMixin, BaseEstimator):
    """A member whose probabilities are NaN on the first row (label spreading's 0 / 0)."""

    def fit(self, X, y):
        self.classes_ = np.unique(y[y != -1])
        self.n_features_in_ = X.shape[1]
        return self

    def predict_proba(self, X):
        probabilities = np.zeros((len(X), len(self.classes_)))
        probabilities[:, 0] = 1.0
        probabilities[0] = np.nan
        return probabilities


def test_a_member_without_an_answer_for_a_row_has_no_say_on_it(iris):
    X, _, y_partial = iris
    pooled = SemiSupervisedEnsemble([("abstains", _Abstains()), ("m2", small_m2())]).fit(
        X, y_partial
    )
    probabilities = pooled.predict_proba(X[:5])
    assert np.isfinite(probabilities).all()
    m2 = pooled.named_estimators_.m2.predict_proba(X[:1])
    # Uniform from the first member: the second one's probabilities, sharpened by weight 0.5.
    by_hand = np.maximum(m2[0], 1e-6) ** 0.5
    assert np.allclose(probabilities[0], by_hand / by_hand.sum())
    assert (np.argmax(probabilities[1:], axis=1) == 0).all()


def test_save_and_load_keep_the_pooled_probabilities(iris, tmp_path):
    # Label spreading's knn kernel keeps a fitted nearest-neighbour search (a KD-tree and its
    # distance metric): safe loading must rebuild those too.
    from sklearn.pipeline import make_pipeline

    from impute_dgm.persistence import load_estimator, save_estimator

    X, _, y_partial = iris
    spread = make_pipeline(
        VAEImputer(hidden_dims=(8,), n_epochs=2, random_state=0),
        LabelSpreading(kernel="knn", n_neighbors=7),
    )
    pooled = SemiSupervisedEnsemble([("spread", spread), ("m2", small_m2())]).fit(X, y_partial)
    save_estimator(pooled, tmp_path / "pooled")
    loaded = load_estimator(tmp_path / "pooled")
    assert np.array_equal(loaded.predict_proba(X), pooled.predict_proba(X))
    assert list(loaded.named_estimators_) == ["spread", "m2"]


def test_categories_of_a_completed_table_reach_the_graph_one_hot(tmp_path):
    # A mixed table: VAEImputer keeps a category column as categories; label spreading needs
    # numbers. Found by fuzzing ("could not convert string to float" from inside scikit-learn).
    import pandas as pd

    from impute_dgm.estimators._encoding import CategoriesOneHot
    from impute_dgm.estimators.ensemble import impute_then_spread
    from impute_dgm.persistence import load_estimator, save_estimator

    rng = np.random.default_rng(0)
    size = rng.normal(size=120)
    table = pd.DataFrame(
        {
            "size": size,
            "colour": pd.Categorical(np.where(size > 0, "red", "blue")),
            "flag": size > 0.5,
            "name": pd.array(np.where(size > -0.5, "a", "b"), dtype="string"),
        }
    )
    encoded = CategoriesOneHot().fit(table).transform(table)
    assert encoded.shape == (120, 2 + 2 + 2)  # size, flag; colour and name one-hot
    assert np.array_equal(encoded[:, 0], size) and set(np.unique(encoded[:, 2:])) == {0, 1}
    numbers = size[:, None]
    assert np.array_equal(CategoriesOneHot().fit(numbers).transform(numbers), numbers)

    holes = table.copy()
    holes.loc[rng.random(120) < 0.2, "colour"] = np.nan
    y = np.where(rng.random(120) < 0.2, (size > 0).astype(int), -1)
    tiny = VAEImputer(hidden_dims=(8,), n_epochs=3, n_eval_samples=10, random_state=0)
    pooled = SemiSupervisedEnsemble(
        [("spread", impute_then_spread(tiny)), ("m2", small_m2())], weights=[0.7, 0.3]
    ).fit(holes, y)
    probabilities = pooled.predict_proba(holes)
    assert np.isfinite(probabilities).all() and np.allclose(probabilities.sum(axis=1), 1.0)
    save_estimator(pooled, tmp_path / "mixed")
    assert np.array_equal(load_estimator(tmp_path / "mixed").predict_proba(holes), probabilities)
