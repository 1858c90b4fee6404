"""Bad input gets a ValueError that names the problem, before torch sees anything."""

import numpy as np
import pandas as pd
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from impute_dgm import VAEImputer


def fast_imputer(**params):
    return VAEImputer(hidden_dims=(8,), latent_dim=2, n_epochs=2, n_eval_samples=10, **params)


def frame(X):
    return pd.DataFrame(X, columns=["a", "b", "c", "d"])


def test_wrong_number_of_columns_at_transform(small_table):
    imputer = fast_imputer().fit(small_table)
    with pytest.raises(ValueError, match="3 features, but VAEImputer is expecting 4"):
        imputer.transform(small_table[:, :3])


def test_different_column_names_at_transform(small_table):
    imputer = fast_imputer().fit(frame(small_table))
    renamed = frame(small_table).rename(columns={"c": "z"})
    with pytest.raises(ValueError, match="feature names should match"):
        imputer.transform(renamed)


def test_all_missing_column_at_fit_is_named(small_table):
    X = frame(small_table)
    X["b"] = np.nan
    with pytest.raises(ValueError, match=r"Column\(s\) 'b' have no observed value"):
        fast_imputer().fit(X)


def test_strings_in_numeric_dataframe_name_the_column(small_table):
    X = frame(small_table).astype(object)
    X.loc[3, "c"] = "n/a"
    with pytest.raises(ValueError, match=r"Non-numeric values found in column\(s\) 'c'.*'n/a'"):
        fast_imputer().fit(X)


def test_numeric_strings_are_accepted(small_table):
    X = frame(small_table).astype(object)
    X.loc[3, "c"] = "1.5"
    fast_imputer().fit(X)


def test_strings_in_numpy_array_name_the_column_index(small_table):
    X = small_table.astype(object)
    X[5, 2] = "oops"
    with pytest.raises(ValueError, match="'oops' found in column index 2"):
        fast_imputer().fit(X)


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_infinity_names_the_column(small_table, value):
    X = frame(small_table)
    X.loc[7, "d"] = value
    with pytest.raises(ValueError, match=r"infinity in column\(s\) 'd'"):
        fast_imputer().fit(X)
    imputer = fast_imputer().fit(frame(small_table))
    with pytest.raises(ValueError, match=r"infinity in column\(s\) 'd'"):
        imputer.transform(X)


def test_empty_array():
    with pytest.raises(ValueError, match="0 sample"):
        fast_imputer().fit(np.empty((0, 3)))


def test_bernoulli_rejects_non_binary_data(small_table):
    with pytest.raises(ValueError, match="binary data"):
        fast_imputer(likelihood="bernoulli").fit(small_table)


def test_unknown_likelihood_is_a_parameter_error(small_table):
    with pytest.raises(InvalidParameterError, match="likelihood"):
        fast_imputer(likelihood="weibull").fit(small_table)


def test_unavailable_cuda_device_is_a_clear_error(small_table):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present, so asking for one is not an error")
    with pytest.raises(ValueError, match="no CUDA device"):
        fast_imputer(device="cuda").fit(small_table)
