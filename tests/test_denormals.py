"""Training flushes subnormal floats to zero on the CPU, and leaves the caller's setting alone."""

import pytest
import torch
from torch import nn

from impute_dgm._denormals import flush_denormals, flushing_denormals
from impute_dgm.training import Trainer

pytestmark = pytest.mark.skipif(
    not torch.set_flush_denormal(False), reason="this CPU has no flush-to-zero mode"
)


def subnormal_product() -> float:
    # 1e-30 x 1e-10 = 1e-40 is subnormal in float32: kept as such normally, zero when flushed.
    return float(torch.tensor(1e-30) * torch.tensor(1e-10))


def test_the_block_flushes_subnormals_and_restores_the_default_after():
    assert not flushing_denormals() and subnormal_product() > 0
    with flush_denormals():
        assert flushing_denormals() and subnormal_product() == 0
    assert not flushing_denormals() and subnormal_product() > 0


def test_a_caller_who_flushes_already_keeps_flushing():
    torch.set_flush_denormal(True)
    try:
        with flush_denormals():
            pass
        assert flushing_denormals()
    finally:
        torch.set_flush_denormal(False)


def test_trainer_steps_run_flushed_and_the_setting_is_restored_afterwards():
    model = nn.Linear(2, 1)
    seen = []

    def loss(batch, generator):
        seen.append(flushing_denormals())
        (x,) = batch
        return model(x).pow(2).mean()

    Trainer(n_epochs=2, batch_size=4, lr=0.01).fit(
        model, loss, (torch.randn(8, 2),), torch.Generator()
    )
    assert seen == [True] * 4
    assert not flushing_denormals()


def test_the_setting_is_restored_when_training_fails():
    model = nn.Linear(2, 1)

    def loss(batch, generator):
        raise ValueError("bad batch")

    with pytest.raises(ValueError, match="bad batch"):
        Trainer(n_epochs=1, batch_size=4, lr=0.01).fit(
            model, loss, (torch.randn(4, 2),), torch.Generator()
        )
    assert not flushing_denormals()
