"""Flow layers: exact inverses and log-determinants checked against autograd Jacobians."""

import pytest
import torch
from torch.distributions import TransformedDistribution

from impute_dgm.flows import (
    ActNorm,
    Affine,
    AffineCoupling,
    BatchNormFlow,
    Logit,
    LULinear,
    MaskedAffineCoupling,
    MultiScale,
    Permutation,
    Reshape,
    Reverse,
    Squeeze,
    alternating_mask,
    channel_mask,
    checkerboard_mask,
    make_image_flow,
    make_tabular_flow,
)


@pytest.fixture(autouse=True, scope="module")
def float64():
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def randomize(module, scale=0.3, seed=0):
    """Give every parameter random values, so zero-initialised couplings are not identities."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(scale * torch.randn(parameter.shape, generator=generator))
    return module.eval()


def autograd_log_det(layer, x_single):
    """log|det J| of the layer at one sample, from the full autograd Jacobian."""

    def flat_forward(v):
        return layer(v.reshape(1, *x_single.shape))[0].flatten()

    jacobian = torch.autograd.functional.jacobian(flat_forward, x_single.flatten())
    return torch.linalg.slogdet(jacobian)[1]


def check_layer(layer, x):
    """Inverse recovers x to 1e-5; log-det matches autograd for every sample; inverse log-det
    is minus the forward one."""
    with torch.no_grad():
        y, ladj = layer(x)
        x_back, inverse_ladj = layer.inverse(y)
    assert torch.allclose(x_back.reshape(x.shape), x, atol=1e-5)
    assert torch.allclose(inverse_ladj, -ladj, atol=1e-8)
    for i in range(x.shape[0]):
        assert ladj[i].item() == pytest.approx(autograd_log_det(layer, x[i]).item(), abs=1e-6)


def tabular(n=4, d=5, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def image(n=3, shape=(2, 4, 4), seed=0):
    return torch.randn(n, *shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("parity", [0, 1])
def test_affine_coupling(parity):
    check_layer(randomize(AffineCoupling(alternating_mask(5, parity), (16, 16))), tabular())


def test_affine_coupling_on_one_feature():
    check_layer(randomize(AffineCoupling(alternating_mask(1, 1), (8,))), tabular(d=1))


def test_coupling_log_scale_is_bounded():
    layer = randomize(AffineCoupling(alternating_mask(4, 0), (8,)), scale=50.0)
    _, ladj = layer(100 * tabular(d=4))
    assert torch.all(ladj.abs() <= 2 * 3.0 + 1e-9)  # two transformed features, bound 3 each


@pytest.mark.parametrize("parity", [0, 1])
def test_checkerboard_coupling(parity):
    layer = MaskedAffineCoupling(checkerboard_mask(4, 4, parity), channels=2, hidden_channels=8)
    check_layer(randomize(layer), image())


@pytest.mark.parametrize("parity", [0, 1])
def test_channel_coupling(parity):
    layer = MaskedAffineCoupling(channel_mask(4, parity), channels=4, hidden_channels=8)
    check_layer(randomize(layer), image(shape=(4, 2, 2)))


def test_masks():
    assert alternating_mask(5, 0).tolist() == [1, 0, 1, 0, 1]
    board = checkerboard_mask(2, 2, 0)
    assert board.tolist() == [[[1, 0], [0, 1]]]
    assert (checkerboard_mask(2, 2, 1) == 1 - board).all()
    assert channel_mask(4, 0).flatten().tolist() == [1, 1, 0, 0]


def test_permutations():
    check_layer(Reverse(5), tabular())
    check_layer(Permutation(torch.tensor([2, 0, 4, 1, 3])), tabular())
    assert Reverse(3)(torch.tensor([[1.0, 2.0, 3.0]]))[0].tolist() == [[3.0, 2.0, 1.0]]


def test_lu_linear_layer_is_exact_and_mixes_every_feature():
    layer = LULinear(5, generator=torch.Generator().manual_seed(0))
    x = tabular()
    # A fresh layer is its permutation: same values, reordered, log-det 0.
    y, ladj = layer(x)
    assert torch.equal(y.sort(-1).values, x.sort(-1).values) and torch.all(ladj == 0)
    randomize(layer)
    check_layer(layer, x)
    jacobian = torch.autograd.functional.jacobian(lambda v: layer(v[None])[0][0], x[0])
    assert (jacobian.abs() > 1e-6).sum() > 15  # dense, unlike a permutation's 5 entries


def test_tabular_flow_with_linear_layers():
    flow = make_tabular_flow(5, 3, (8,), linear=True, coupling="spline")
    assert sum(isinstance(layer, LULinear) for layer in flow.layers) == 3
    check_layer(randomize(flow, 0.2), tabular())
    # One feature: nothing to mix, no linear layer.
    assert not any(
        isinstance(layer, LULinear) for layer in make_tabular_flow(1, 2, (4,), linear=True).layers
    )


def test_actnorm_initializes_from_data_and_is_exact():
    x = 3.0 + 2.0 * image(n=64)
    layer = ActNorm(2).train()
    y, _ = layer(x)
    assert torch.allclose(y.mean(dim=(0, 2, 3)), torch.zeros(2), atol=1e-6)
    assert torch.allclose(y.std(dim=(0, 2, 3)), torch.ones(2), atol=1e-3)
    check_layer(layer.eval(), x[:3])
    check_layer(ActNorm(5).train().eval(), tabular())


def test_batchnorm_is_exact_with_running_statistics():
    layer = BatchNormFlow(2).train()
    for seed in range(5):  # move the running averages away from 0 and 1
        layer(2.0 + 3.0 * image(n=32, seed=seed))
    with torch.no_grad():
        layer.log_gamma.fill_(0.3)
        layer.beta.fill_(-0.2)
    assert layer.running_mean.abs().min() > 0.3
    check_layer(layer.eval(), image())
    check_layer(BatchNormFlow(5).eval(), tabular())


def test_batchnorm_training_mode_log_det_matches_the_batch_map():
    """In training mode the map depends on the batch statistics; its per-sample Jacobian,
    with the statistics held fixed, is what the layer reports."""
    layer = BatchNormFlow(5).train()
    x = tabular(n=16)
    _, ladj = layer(x)
    var = x.var(dim=0, unbiased=False)
    expected = (-0.5 * torch.log(var + layer.eps)).sum()
    assert torch.allclose(ladj, expected.expand(16))


def test_squeeze_and_reshape():
    x = image(shape=(1, 4, 4))
    check_layer(Squeeze(), x)
    y, _ = Squeeze()(x)
    assert y.shape == (3, 4, 2, 2)
    # Each 2x2 patch lands in the channels of one position.
    assert torch.equal(y[0, :, 0, 0], x[0, 0, :2, :2].flatten())
    check_layer(Reshape((2, 2, 2)), tabular(d=8))


def test_affine_and_logit():
    check_layer(Affine(torch.tensor([1.0, -2.0, 0.5]), torch.tensor([2.0, 0.1, 3.0])), tabular(d=3))
    levels = torch.rand(4, 3, generator=torch.Generator().manual_seed(1)) * 17
    check_layer(Logit(17.0, alpha=0.05), levels)


def test_multiscale_image_architecture():
    layer = randomize(MultiScale((1, 4, 4), n_scales=2, n_couplings=2, hidden_channels=4), 0.2)
    x = image(shape=(1, 4, 4))
    u, _ = layer(x)
    assert u.shape == (3, 16)
    check_layer(layer, x)


def test_multiscale_rejects_odd_sizes():
    with pytest.raises(ValueError, match="even"):
        MultiScale((1, 5, 4), n_scales=2, n_couplings=2)


@pytest.mark.parametrize("normalization", [None, "actnorm", "batchnorm"])
def test_whole_tabular_flow(normalization):
    flow = make_tabular_flow(5, 4, (8,), normalization)
    flow.train()(tabular(n=32))  # initialise ActNorm / running averages
    check_layer(randomize(flow, 0.2), tabular())


@pytest.mark.parametrize("normalization", [None, "actnorm"])
def test_whole_image_flow(normalization):
    flow = make_image_flow((1, 4, 4), 2, 2, 4, 1, normalization, preprocessing=[Logit(17.0)])
    x = torch.rand(3, 16, generator=torch.Generator().manual_seed(2)) * 17
    flow.train()(x)
    check_layer(randomize(flow, 0.1), x)


def test_flow_log_prob_is_change_of_variables():
    flow = randomize(make_tabular_flow(3, 4, (8,)), 0.3)
    x = tabular(d=3)
    u, ladj = flow(x)
    base = torch.distributions.Normal(0.0, 1.0).log_prob(u).sum(-1)
    assert torch.allclose(flow.log_prob(x), base + ladj)


def test_flow_as_torch_distribution():
    """The same density through torch.distributions: TransformedDistribution over the layers'
    Transform adapters, and FlowDistribution."""
    flow = randomize(make_tabular_flow(3, 4, (8,)), 0.3)
    x = tabular(d=3)
    generative = [layer.as_transform().inv for layer in reversed(flow.layers)]
    transformed = TransformedDistribution(flow.base(), generative)
    assert torch.allclose(transformed.log_prob(x), flow.log_prob(x), atol=1e-10)
    distribution = flow.distribution()
    assert torch.allclose(distribution.log_prob(x), flow.log_prob(x))
    torch.manual_seed(0)
    draws = distribution.rsample((7, 2))
    assert draws.shape == (7, 2, 3)
    assert distribution.log_prob(draws).shape == (7, 2)


def test_a_whole_flow_is_one_torch_transform():
    """A flow is a layer: as one ``Transform`` it maps any batch shape and its log-determinant
    is the sum of its layers'; nested in another flow it adds its layers' log-determinant."""
    flow = randomize(make_tabular_flow(3, 4, (8,)), 0.3)
    transform = flow.as_transform()
    x = torch.randn(5, 2, 3, generator=torch.Generator().manual_seed(4))
    u = transform(x)
    expected_u, expected_ladj = flow(x.reshape(10, 3))
    assert torch.allclose(u.reshape(10, 3), expected_u)
    assert torch.allclose(transform.log_abs_det_jacobian(x, u), expected_ladj.reshape(5, 2))
    assert torch.allclose(transform.inv(u), x, atol=1e-10)
    assert isinstance(flow.distribution(), TransformedDistribution)
    outer = make_tabular_flow(3, 2, (8,))
    nested = type(flow)([flow, *randomize(outer, 0.3).layers], n_features=3)
    check_layer(nested, tabular(d=3))


def test_fixed_layers_are_torch_transforms():
    """Affine and Reshape are torch's transforms; the written-out Logit is the same map as
    torch's affine squash then inverse sigmoid."""
    from torch.distributions import AffineTransform, SigmoidTransform

    location, scale = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([2.0, 0.1, 3.0])
    x = tabular(d=3)
    assert torch.equal(Affine(location, scale)(x)[0], AffineTransform(location, scale).inv(x))
    p = 0.05 + 0.9 * x.sigmoid()
    assert torch.allclose(Logit(1.0)(x.sigmoid())[0], SigmoidTransform().inv(p))
    assert Reshape((2, 2, 2))(tabular(n=3, d=8))[0].shape == (3, 2, 2, 2)
