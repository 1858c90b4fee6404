"""Mixed-type tables: a likelihood per column, dtypes that round-trip, multiple imputation."""

import numpy as np
import pandas as pd
import pytest
from statistical import check, seed

from impute_dgm import VAEImputer
from impute_dgm.distributions import (
    BernoulliLikelihood,
    CategoricalLikelihood,
    DiscretizedGaussianLikelihood,
    GaussianLikelihood,
    PoissonLikelihood,
)
from impute_dgm.pooling import pool

N_ROWS = 400


def mixed_table(n=N_ROWS, random_seed=0):
    """One latent factor drives a float, two integer, a flag and three category columns."""
    rng = np.random.default_rng(random_seed)
    z = rng.normal(size=n)
    index = np.arange(1000, 1000 + n)
    return pd.DataFrame(
        {
            "x": z + 0.1 * rng.normal(size=n),
            "kids": pd.array(np.clip(np.round(2 + z), 0, None).astype(int), dtype="Int64"),
            "count": (10 + np.round(3 * z)).astype(np.int64),
            "flag": pd.array(z > 0, dtype="boolean"),
            "colour": pd.Categorical(
                np.where(z < -0.5, "red", np.where(z < 0.5, "green", "blue")),
                categories=["red", "green", "blue"],
            ),
            "city": pd.Series(np.where(z > 0, "Paris", "Oslo"), index=index, dtype=object),
            "size": pd.array(np.where(z > 1, "big", "small"), dtype="string"),
        },
        index=index,
    )


def with_holes(table, rate=0.3, random_seed=1):
    """30% of the cells of every nullable column set missing; row 0 stays complete."""
    rng = np.random.default_rng(random_seed)
    holes = table.copy()
    for name in holes.columns:
        if holes[name].dtype == np.int64:
            continue  # a NumPy int column cannot hold a missing value
        rows = rng.random(len(holes)) < rate
        rows[0] = False
        holes.loc[holes.index[rows], name] = np.nan if holes[name].dtype == object else pd.NA
    return holes


@pytest.fixture(scope="module")
def table():
    complete = mixed_table(random_seed=seed(0))
    return complete, with_holes(complete, random_seed=seed(1))


@pytest.fixture(scope="module")
def fitted(table, fit_once):
    _, holes = table
    return fit_once(
        "mixed-table-imputer",
        lambda: VAEImputer(n_epochs=60, hidden_dims=(64, 64), random_state=seed(0)).fit(holes),
    )


def test_one_likelihood_per_column_kind(fitted):
    likelihood = fitted.likelihood_
    kinds = {c.name: c.kind for c in fitted.schema_.columns_}
    assert kinds == {
        "x": "continuous",
        "kids": "integer",
        "count": "integer",
        "flag": "binary",
        "colour": "categorical",
        "city": "categorical",
        "size": "categorical",
    }
    by_column = {
        fitted.feature_names_in_[j]: part
        for part, columns in zip(likelihood.parts, likelihood.columns, strict=True)
        for j in columns
    }
    assert isinstance(by_column["x"], GaussianLikelihood)
    assert isinstance(by_column["kids"], DiscretizedGaussianLikelihood)
    assert isinstance(by_column["flag"], BernoulliLikelihood)
    # The table's category columns share one block, each with its own levels.
    categories = by_column["colour"]
    assert isinstance(categories, CategoricalLikelihood) and not categories.ordered
    assert by_column["city"] is categories and by_column["size"] is categories
    levels = {c.name: len(c.levels) for c in fitted.schema_.columns_ if c.kind == "categorical"}
    assert categories.n_levels == (levels["colour"], levels["city"], levels["size"])
    assert levels["colour"] == 3
    assert list(fitted.schema_.columns_[4].levels) == ["red", "green", "blue"]


def test_dtypes_index_and_observed_cells_round_trip(fitted, table):
    _, holes = table
    filled = fitted.transform(holes)
    assert isinstance(filled, pd.DataFrame)
    assert list(filled.columns) == list(holes.columns)
    assert filled.index.equals(holes.index)
    pd.testing.assert_series_equal(filled.dtypes, holes.dtypes)
    assert filled["colour"].cat.categories.tolist() == ["red", "green", "blue"]
    assert not filled.isna().any().any()
    for name in holes.columns:
        observed = holes[name].notna()
        pd.testing.assert_series_equal(filled.loc[observed, name], holes.loc[observed, name])
        assert holes[name].isna().any() or name == "count"
    assert set(filled["city"]) <= {"Paris", "Oslo"}
    assert (filled["kids"] >= 0).all()


def test_set_output_pandas_keeps_the_table(table):
    _, holes = table
    imputer = VAEImputer(n_epochs=2, hidden_dims=(8,), random_state=0)
    filled = imputer.set_output(transform="pandas").fit_transform(holes)
    pd.testing.assert_series_equal(filled.dtypes, holes.dtypes)
    assert filled.index.equals(holes.index)


@pytest.mark.statistical
def test_missing_categories_are_recovered_from_the_other_columns(fitted, table):
    """Every category here is a function of the latent factor that the float column shows."""
    complete, holes = table
    filled = fitted.transform(holes)
    for name in ("colour", "city", "flag"):
        missing = holes[name].isna().to_numpy()
        accuracy = (filled[name][missing] == complete[name][missing]).mean()
        most_frequent = (complete[name][missing] == holes[name].mode()[0]).mean()
        check(
            f"{name}: accuracy - most-frequent-level accuracy", accuracy - most_frequent, ">", 0.2
        )
    missing = holes["kids"].isna().to_numpy()
    error = np.abs(filled["kids"][missing] - complete["kids"][missing]).mean()
    mean_error = np.abs(holes["kids"].mean() - complete["kids"][missing]).mean()
    check("kids: MAE / mean-imputation MAE", error / mean_error, "<", 0.7)


def test_score_samples_sums_the_columns_terms(fitted, table):
    _, holes = table
    scores = fitted.score_samples(holes.iloc[:20])
    assert scores.shape == (20,) and np.isfinite(scores).all()
    # Only the float column has a density (in its own units); the rest are probabilities, so
    # scaling x by 10 lowers every row that observes x by log 10 under a refitted model's
    # change of units -- here checked on the Jacobian vector itself.
    assert fitted.schema_.log_scale_[1:].tolist() == [0.0] * 6
    assert fitted.schema_.log_scale_[0] == pytest.approx(np.log(holes["x"].std(ddof=0)))


def test_unknown_level_is_named_or_treated_as_missing(fitted, table):
    _, holes = table
    strange = holes.iloc[:3].copy()
    strange["city"] = strange["city"].astype(object)
    strange.iloc[1, strange.columns.get_loc("city")] = "Lima"
    with pytest.raises(ValueError, match=r"Column 'city' has level 'Lima', which fit never saw"):
        fitted.transform(strange)
    lenient = VAEImputer(n_epochs=1, hidden_dims=(8,), handle_unknown="missing").fit(holes)
    assert lenient.transform(strange)["city"].iloc[1] in {"Paris", "Oslo"}


def test_kind_change_and_empty_column_are_named(fitted, table):
    _, holes = table
    changed = holes.copy()
    changed["flag"] = changed["flag"].astype("Float64")
    with pytest.raises(ValueError, match="Column 'flag' was binary in fit but is continuous"):
        fitted.transform(changed)
    empty = holes.copy()
    empty["city"] = pd.Series([None] * len(empty), index=empty.index, dtype=object)
    with pytest.raises(ValueError, match=r"Column\(s\) 'city' have no observed value"):
        VAEImputer(n_epochs=1).fit(empty)
    with pytest.raises(ValueError, match="pass a DataFrame"):
        fitted.transform(holes.to_numpy())


def test_text_among_numbers_is_still_refused(table):
    _, holes = table
    bad = holes.copy()
    bad["x"] = bad["x"].astype(object)
    bad.iloc[2, 0] = "n/a"
    with pytest.raises(ValueError, match=r"Non-numeric values found in column\(s\) 'x'.*'n/a'"):
        VAEImputer(n_epochs=1).fit(bad)


def test_column_likelihoods_override_the_dtype_default(table):
    _, holes = table
    imputer = VAEImputer(
        n_epochs=2,
        hidden_dims=(8,),
        column_likelihoods={"kids": "poisson", "x": "student_t"},
        random_state=0,
    ).fit(holes)
    parts = {
        imputer.feature_names_in_[j]: part
        for part, columns in zip(
            imputer.likelihood_.parts, imputer.likelihood_.columns, strict=True
        )
        for j in columns
    }
    assert isinstance(parts["kids"], PoissonLikelihood)
    assert type(parts["x"]).__name__ == "StudentTLikelihood"
    assert imputer.transform(holes)["kids"].dtype == "Int64"
    with pytest.raises(ValueError, match="holds categories"):
        VAEImputer(n_epochs=1, column_likelihoods={"city": "gaussian"}).fit(holes)
    with pytest.raises(ValueError, match="does not have|do not have"):
        VAEImputer(n_epochs=1, column_likelihoods={"nope": "gaussian"}).fit(holes)


@pytest.mark.statistical
def test_multiple_imputations_vary_where_missing_and_agree_where_observed(fitted, table):
    _, holes = table
    draws = fitted.sample_imputations(holes, n_imputations=20, random_state=seed(0))
    assert len(draws) == 20
    for draw in draws:
        pd.testing.assert_series_equal(draw.dtypes, holes.dtypes)
        assert not draw.isna().any().any()
        for name in holes.columns:
            observed = holes[name].notna()
            pd.testing.assert_series_equal(draw.loc[observed, name], holes.loc[observed, name])
    missing_x = holes["x"].isna().to_numpy()
    stack = np.stack([d["x"].to_numpy()[missing_x] for d in draws])
    assert (stack.std(axis=0) > 0).all()  # drawn, not copied
    # Categories are drawn too: some missing city cell takes both levels across the draws.
    missing_city = holes["city"].isna().to_numpy()
    cities = np.stack([d["city"].to_numpy()[missing_city] for d in draws])
    assert any(len(set(column)) > 1 for column in cities.T)
    # The mean over many draws approaches the single imputation E[x_miss | x_obs].
    many = fitted.sample_imputations(holes, n_imputations=100, random_state=seed(1))
    values = np.stack([d["x"].to_numpy()[missing_x] for d in many])
    single = fitted.transform(holes)["x"].to_numpy()[missing_x]
    error = np.abs(values.mean(axis=0) - single) / (values.std(axis=0) / np.sqrt(100))
    check("mean |mean of 100 draws - transform| / standard error", error.mean(), "<", 2.0)
    again = fitted.sample_imputations(holes, n_imputations=2, random_state=seed(0))
    pd.testing.assert_frame_equal(again[0], draws[0])


def test_sample_imputations_on_arrays_keep_observed_values(small_table):
    imputer = VAEImputer(n_epochs=3, hidden_dims=(8,), random_state=0).fit(small_table)
    draws = imputer.sample_imputations(small_table, n_imputations=3, random_state=0)
    observed = ~np.isnan(small_table)
    for draw in draws:
        assert isinstance(draw, np.ndarray) and np.isfinite(draw).all()
        assert np.array_equal(draw[observed], small_table[observed])
    assert not np.array_equal(draws[0], draws[1])


def test_draws_of_whole_number_float_columns_are_whole_numbers():
    # Floats holding whole numbers get the rounded likelihood; their draws come back from
    # float32 model units a few millionths off the integers unless rounded in original units.
    rng = np.random.default_rng(0)
    level = rng.integers(-50, -40, size=200).astype(float)
    X = np.column_stack([level, 0.3 * level + rng.normal(size=200)])
    X[rng.random((200, 2)) < 0.3] = np.nan
    imputer = VAEImputer(n_epochs=5, hidden_dims=(8,), random_state=0).fit(X)
    missing = np.isnan(X)
    for draw in imputer.sample_imputations(X, n_imputations=2, random_state=0):
        assert np.array_equal(draw[missing[:, 0], 0], np.round(draw[missing[:, 0], 0]))
        # The continuous column's draws are left as drawn.
        assert not np.array_equal(draw[missing[:, 1], 1], np.round(draw[missing[:, 1], 1]))


@pytest.mark.parametrize("missingness", ["mar", "self_masking"])
def test_whole_number_imputations_and_draws_stay_in_the_range_seen(missingness):
    # A count piled up at 0 (as dark pixels, or counts of rare events): the rounded normal is
    # censored at 0 and at the largest count, so neither means nor draws leave [0, 6].
    rng = np.random.default_rng(0)
    count = np.where(rng.random(300) < 0.7, 0, rng.integers(1, 7, size=300)).astype(float)
    X = np.column_stack([count, count + rng.normal(size=300)])
    X[rng.random((300, 2)) < 0.3] = np.nan
    X[np.isnan(X).all(axis=1), 1] = 0.0
    settings = {"n_epochs": 5, "hidden_dims": (8,), "missingness": missingness}
    imputer = VAEImputer(random_state=0, **settings).fit(X)
    missing = np.isnan(X[:, 0])
    imputed = imputer.transform(X)[missing, 0]
    assert imputed.min() >= 0 and imputed.max() <= 6
    for draw in imputer.sample_imputations(X, n_imputations=3, random_state=0):
        values = draw[missing, 0]
        assert values.min() >= 0 and values.max() <= 6
        assert np.array_equal(values, np.round(values))


def test_rubins_rules_against_a_hand_computed_example():
    # m = 4 estimates of one coefficient and their standard errors.
    estimates = np.array([2.0, 2.4, 1.8, 2.2])
    errors = np.array([0.5, 0.4, 0.5, 0.6])
    pooled = pool(estimates, errors, complete_data_dof=30)
    # By hand: Q = 2.1; U = (0.25 + 0.16 + 0.25 + 0.36) / 4 = 0.255;
    # B = (0.01 + 0.09 + 0.09 + 0.01) / 3 = 0.2 / 3; T = U + 1.25 B = 0.3383333.
    assert pooled.estimate == pytest.approx(2.1)
    assert pooled.within_variance == pytest.approx(0.255)
    assert pooled.between_variance == pytest.approx(0.2 / 3)
    assert pooled.total_variance == pytest.approx(0.255 + 1.25 * 0.2 / 3)
    # lambda = 1.25 B / T = 0.246305; nu_old = 3 / lambda^2 = 49.451;
    # nu_obs = 31 / 33 * 30 * (1 - lambda) = 21.2405; nu = nu_old nu_obs / (sum) = 14.8584.
    assert pooled.fraction_missing_information == pytest.approx(0.246305, rel=1e-5)
    assert pooled.degrees_of_freedom == pytest.approx(14.8584, rel=1e-4)
    low, high = pooled.confidence_interval(0.95)
    # t_{0.975, 14.8584} = 2.1332
    assert high - 2.1 == pytest.approx(2.1332 * np.sqrt(0.3383333), rel=1e-3)
    assert 2.1 - low == pytest.approx(high - 2.1)
    large_sample = pool(estimates, errors)
    assert large_sample.degrees_of_freedom == pytest.approx(3 / 0.246305**2, rel=1e-5)
    with pytest.raises(ValueError, match="at least 2"):
        pool([1.0], [0.1])


def test_joint_observation_with_a_wide_first_block():
    """log_prob and sample place every block's columns, whatever the first block's width."""
    from torch.distributions import Categorical, Normal

    from impute_dgm.distributions.likelihoods import JointObservation

    torch = pytest.importorskip("torch")
    loc = torch.randn(5, 7, 3)
    logits = torch.randn(5, 7, 1, 4)
    joint = JointObservation(
        [Normal(loc, torch.ones(3)), Categorical(logits=logits)],
        [torch.tensor([0, 2, 3]), torch.tensor([1])],
        n_features=4,
    )
    value = torch.tensor([0.5, 2.0, -1.0, 0.0]).expand(5, 7, 4)
    log_prob = joint.log_prob(value)
    assert log_prob.shape == (5, 7, 4)
    expected_normal = Normal(loc, 1.0).log_prob(value[..., [0, 2, 3]])
    assert torch.allclose(log_prob[..., [0, 2, 3]], expected_normal)
    assert torch.allclose(log_prob[..., 1], logits.log_softmax(-1)[..., 0, 2])
    assert joint.sample().shape == (5, 7, 4)


def test_categories_with_different_level_counts_as_one_block_match_one_per_column():
    """The shared block pads each column's logits to the widest with -inf: its log-likelihood,
    draws, one-hot view and imputations are those of one categorical per column."""
    torch = pytest.importorskip("torch")
    counts = (3, 5, 2)
    block = CategoricalLikelihood(counts, ordered=False).fitted(np.array([[2.0, 4.0, np.nan]]))
    params = torch.randn(6, 4, sum(counts), requires_grad=True)
    values = torch.tensor([[2.0, 4.0, 1.0], [0.0, 0.0, 0.0], [1.0, 3.0, 1.0], [2.0, 1.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    joint = block(params)
    starts = np.cumsum((0, *counts))
    alone = [
        CategoricalLikelihood(count, ordered=False)(params[..., starts[j] : starts[j + 1]])
        for j, count in enumerate(counts)
    ]
    expected = torch.cat([part.log_prob(values[:, j : j + 1]) for j, part in enumerate(alone)], -1)
    assert torch.allclose(joint.log_prob(values), expected, atol=1e-6)
    # Gradients reach every logit a column has, none is lost to the padding.
    joint.log_prob(values).sum().backward()
    assert torch.isfinite(params.grad).all() and (params.grad != 0).all()
    # Padded levels have no mass: never drawn, never imputed.
    draws = joint.sample((200,))
    assert (draws < torch.tensor(counts)).all()
    assert (
        block.point_estimate(block.imputation_statistics(joint))
        .max(0)
        .values.max(0)
        .values.le(torch.tensor(counts) - 1)
        .all()
    )
    # The encoder's one-hot view: each column's own one-hot, all zeros where missing.
    view = block.encoder_view(values * mask, mask)
    expected_view = torch.cat(
        [
            torch.nn.functional.one_hot(values[:, j].long(), count) * mask[:, j, None]
            for j, count in enumerate(counts)
        ],
        dim=-1,
    ).float()
    assert view.shape == (4, block.encoder_width(3)) and torch.equal(view, expected_view)
    assert block.decoder_width(3) == sum(counts)
    with pytest.raises(ValueError, match="n_levels=2"):
        block.check_data(np.array([[0.0, 0.0, 2.0]]))


def test_a_table_that_starts_with_several_float_columns_fits():
    rng = np.random.default_rng(seed(3))
    n = 120
    z = rng.normal(size=n)
    frame = pd.DataFrame(
        {
            "a": z + 0.1 * rng.normal(size=n),
            "b": -z + 0.1 * rng.normal(size=n),
            "c": rng.normal(size=n),
            "level": pd.Categorical(np.where(z > 0, "high", "low")),
        }
    )
    holes = frame.mask(rng.random(frame.shape) < 0.2)
    out = VAEImputer(n_epochs=3, hidden_dims=(8,), random_state=0).fit_transform(holes)
    assert out.notna().all().all() and list(out.dtypes) == list(frame.dtypes)


def test_a_fraction_in_an_integer_column_is_named(fitted, table):
    _, holes = table
    bad = holes.copy()
    bad["kids"] = bad["kids"].astype("Float64")
    bad.loc[bad.index[3], "kids"] = 2.5
    with pytest.raises(ValueError, match=r"Column 'kids' has value 2\.5: .*integer"):
        fitted.transform(bad)


def test_restore_dtypes_reads_back_what_json_carries(fitted, table):
    """Categories as text or numbers, booleans as 0/1 or text, integers as floats with gaps:
    the schema gives back the fitted dtypes, so transform returns the fitted levels."""
    _, holes = table
    rows = holes.iloc[:40]
    transported = pd.DataFrame(
        {
            "x": rows["x"].astype(object),
            "kids": rows["kids"].astype("float64"),
            "count": rows["count"].astype("float64"),
            "flag": rows["flag"].map({True: "true", False: 0.0}).astype(object),
            "colour": rows["colour"].astype(object),
            "city": rows["city"],
            "size": rows["size"].astype(object),
        },
        index=rows.index,
    )
    restored = fitted.schema_.restore_dtypes(transported)
    assert list(restored.dtypes[["kids", "flag", "colour", "size"]]) == [
        pd.Int64Dtype(),
        pd.BooleanDtype(),
        holes["colour"].dtype,
        holes["size"].dtype,
    ]
    pd.testing.assert_frame_equal(
        fitted.transform(restored).astype({"count": "Int64"}),
        fitted.transform(rows).astype({"count": "Int64"}),
    )
    bad = transported.copy()
    bad.loc[bad.index[1], "flag"] = "maybe"
    with pytest.raises(ValueError, match="Column 'flag' is boolean, but has value 'maybe'"):
        fitted.schema_.restore_dtypes(bad)


def test_scaling_in_row_chunks_matches_standard_scaler_on_a_table_larger_than_a_chunk():
    # The schema standardises in row chunks (memory); the statistics and the scaled values
    # are StandardScaler's, the values to the last bit, the statistics to rounding.
    from sklearn.preprocessing import StandardScaler

    from impute_dgm.schema import ROWS_PER_CHUNK, TableSchema

    rng = np.random.default_rng(0)
    X = rng.normal(3.0, 2.0, size=(2 * ROWS_PER_CHUNK + 17, 3)) * [1.0, 10.0, 1e-3]
    X[rng.random(X.shape) < 0.3] = np.nan
    schema = TableSchema("gaussian").fit(X)
    reference = StandardScaler().fit(X)
    np.testing.assert_allclose(schema.scaler_.mean_, reference.mean_, rtol=1e-12)
    np.testing.assert_allclose(schema.scaler_.scale_, reference.scale_, rtol=1e-12)
    encoded = schema.encode(X)
    scaled = (X - schema.scaler_.mean_) / schema.scaler_.scale_
    np.testing.assert_array_equal(encoded, scaled)
    # Training's float32 units are these rounded, made without a float64 copy of the table.
    np.testing.assert_array_equal(schema.encode(X, np.float32), scaled.astype(np.float32))
    # The fallback (a diverged fit's imputation) is each column's mean in model units.
    np.testing.assert_allclose(schema.fallback_, np.nanmean(scaled, axis=0), atol=1e-12)
    decoded = schema.decode(np.nan_to_num(encoded))
    observed = ~np.isnan(X)
    np.testing.assert_allclose(decoded[observed], X[observed], rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("missingness", ["mar", "self_masking"])
def test_a_training_step_builds_no_tensor_from_host_data(table, missingness):
    """The blocks' column indices and the categories' level indices are made once, at fit:
    made at every step from Python lists, each would be a host-to-device copy that waits for
    the GPU on CUDA. ``aten::lift_fresh`` is what torch records for a tensor made from host
    data."""
    torch = pytest.importorskip("torch")
    from torch.profiler import profile

    _, holes = table
    imputer = VAEImputer(n_epochs=1, hidden_dims=(8,), missingness=missingness, random_state=0)
    model = imputer.fit(holes).model_
    encoded = imputer.schema_.encode(holes.iloc[:16])
    x = torch.as_tensor(np.nan_to_num(encoded), dtype=torch.float32)
    mask = torch.as_tensor(~np.isnan(encoded), dtype=torch.float32)
    noise = torch.randn(5, 16, model.latent_dim + model.n_features)
    with profile() as profiler:
        model.bound(x, mask, noise).mean().backward()
    names = [event.name for event in profiler.events()]
    assert "aten::constant_pad_nd" in names  # the categories' padded block ran
    assert names.count("aten::lift_fresh") == 0
