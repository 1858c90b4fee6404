"""Flow benchmark: toy 2D densities with known truth, and scikit-learn's digits.

1. Toy densities (two Gaussians, a chequerboard, two moons with noise), 10,000 training draws:
   KL(true || model) and held-out log-likelihood per point, both on 20,000 fresh draws from
   the truth, for FlowDensityEstimator with its defaults (spline couplings on a Gaussian-mixture
   base), the same with settings for sharp 2D densities (conditioners of (128, 128), 32 bins,
   300 epochs with a cosine schedule, no early stopping), RealNVP (8 affine couplings of
   (64, 64) on N(0, I)), 8 spline couplings of (64, 64) on N(0, I), FlowDensityEstimator with
   averaged weights and its number of knots (16 or 32) chosen by 3-fold CV, and a Gaussian KDE
   with its bandwidth chosen by 3-fold CV; a PNG of true vs learned density (defaults).
2. Digits (1797 x 64, levels 0..16), dequantised and logit-transformed: test bits/dim (the
   importance-weighted bound over 10 noise draws for every method), fit seconds, training and
   sampling rows/s and parameter counts of this project's RealNVP (tabular, and the multi-scale
   image architecture) and spline flows (uniform and variational dequantisation) against
   zuko's RealNVP and NSF and an nflows affine-coupling flow with the same number of layers and
   hidden sizes, the same epochs and early stopping, the same train/test split, over several
   seeds; plus a spline flow with zuko NSF's parameter count.

Writes ``benchmarks/results/flows.json`` and ``benchmarks/results/flows_toy.png``.

    python benchmarks/flows.py [--seeds 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.special import logsumexp
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KernelDensity

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, environment, fold_methods, print_table, summarise, write_json  # noqa: E402

from impute_dgm import FlowDensityEstimator  # noqa: E402
from impute_dgm.flows import Logit  # noqa: E402
from impute_dgm.training import Trainer  # noqa: E402

# ---------------------------------------------------------------------------------------
# Toy densities: samplers and exact log densities
# ---------------------------------------------------------------------------------------


def two_gaussians(n, rng):
    centres = np.array([[-1.5, 0.0], [1.5, 0.0]])
    return centres[rng.integers(0, 2, n)] + 0.5 * rng.normal(size=(n, 2))


def two_gaussians_log_density(x):
    centres = np.array([[-1.5, 0.0], [1.5, 0.0]])
    squared = ((x[:, None, :] - centres[None]) ** 2).sum(-1) / 0.25
    return logsumexp(-0.5 * squared, axis=1) - math.log(2) - math.log(2 * math.pi * 0.25)


def chequerboard(n, rng):
    """Uniform on the 8 dark squares of a 4 x 4 board on [-2, 2]^2 (density 1/8 there)."""
    out = np.empty((0, 2))
    while len(out) < n:
        x = rng.uniform(-2, 2, size=(2 * n, 2))
        out = np.concatenate([out, x[(np.floor(x[:, 0]) + np.floor(x[:, 1])) % 2 == 0]])
    return out[:n]


def chequerboard_log_density(x):
    inside = (np.abs(x) <= 2).all(1) & ((np.floor(x[:, 0]) + np.floor(x[:, 1])) % 2 == 0)
    return np.where(inside, math.log(1 / 8), -np.inf)


MOON_NOISE = 0.1


def _moon_curves(t):
    upper = np.stack([np.cos(t), np.sin(t)], -1)
    lower = np.stack([1 - np.cos(t), 0.5 - np.sin(t)], -1)
    return upper, lower


def two_moons(n, rng):
    t = rng.uniform(0, math.pi, n)
    upper, lower = _moon_curves(t)
    centres = np.where(rng.integers(0, 2, n)[:, None] == 0, upper, lower)
    return centres + MOON_NOISE * rng.normal(size=(n, 2))


def two_moons_log_density(x, n_grid=4000):
    """Exact up to the quadrature over the curve parameter: a Gaussian blur of two arcs."""
    t = (np.arange(n_grid) + 0.5) / n_grid * math.pi
    centres = np.concatenate(_moon_curves(t))
    out = np.empty(len(x))
    for start in range(0, len(x), 2000):
        chunk = x[start : start + 2000]
        squared = ((chunk[:, None, :] - centres[None]) ** 2).sum(-1) / MOON_NOISE**2
        out[start : start + 2000] = logsumexp(-0.5 * squared, axis=1) - math.log(len(centres))
    return out - math.log(2 * math.pi * MOON_NOISE**2)


TOYS = {
    "two gaussians": (two_gaussians, two_gaussians_log_density),
    "chequerboard": (chequerboard, chequerboard_log_density),
    "two moons": (two_moons, two_moons_log_density),
}


TOY_2D_SETTINGS = "spline, 2D settings (4 x (128, 128), 32 bins, 300 epochs cosine from 3e-3)"
TOY_CV = "FlowDensityEstimator (n_bins by CV, weight averaging 0.9995)"


def toy_methods(quick: bool) -> dict:
    trained = dict(
        n_layers=8,
        hidden_dims=(64, 64),
        n_bins=8,
        lr_schedule="constant",
        n_epochs=2 if quick else 150,
        batch_size=256,
        lr=2e-3,
        n_iter_no_change=15,
        random_state=0,
    )
    return {
        "FlowDensityEstimator (defaults)": lambda: FlowDensityEstimator(
            random_state=0, **({"n_epochs": 2} if quick else {})
        ),
        "RealNVP (8 affine x (64, 64), N(0, I))": lambda: FlowDensityEstimator(
            coupling="affine", base="normal", **trained
        ),
        "spline (8 x (64, 64), N(0, I))": lambda: FlowDensityEstimator(
            coupling="spline", base="normal", **trained
        ),
        # Sharp-edged 2D densities need many knots and a long, annealed run: early stopping on
        # a noisy held-out likelihood ends the chequerboard after ~50 epochs at KL 0.15.
        TOY_2D_SETTINGS: lambda: FlowDensityEstimator(
            hidden_dims=(128, 128),
            n_bins=32,
            lr=3e-3,
            n_epochs=2 if quick else 300,
            lr_schedule="cosine",
            early_stopping=False,
            random_state=0,
        ),
        # Tuned like the KDE: the knots a density needs by 3-fold CV (a sharp-edged board
        # needs 32, a blurred curve overfits them and wants 16), on averaged weights.
        TOY_CV: lambda: GridSearchCV(
            FlowDensityEstimator(
                weight_averaging=0.9995, random_state=0, **({"n_epochs": 2} if quick else {})
            ),
            {"n_bins": [16, 32]},
            cv=2 if quick else 3,
        ),
        "KDE (bandwidth by CV)": lambda: GridSearchCV(
            KernelDensity(), {"bandwidth": np.geomspace(0.01, 0.5, 3 if quick else 15)}, cv=3
        ),
    }


def toy_rows(quick: bool) -> tuple[int, int]:
    """Training draws and fresh draws (for KL and held-out likelihood) per toy."""
    return (600, 1000) if quick else (10_000, 20_000)


def run_toys(quick: bool, selected: set | None = None) -> tuple[dict, dict]:
    """Fit every toy method (or those in ``selected``) on each toy; the records and, when the
    defaults ran, their density grids for the figure."""
    results, grids = {}, {}
    for name, (sampler, log_density) in TOYS.items():
        rng = np.random.default_rng(0)
        n_train, n_fresh = toy_rows(quick)
        X = sampler(n_train, rng)
        truth = sampler(n_fresh, np.random.default_rng(1))
        # The exact two-moons density sums over thousands of arc points: once per toy.
        true_log_density = log_density(truth)
        results[name] = {}
        for method, make in toy_methods(quick).items():
            if selected is not None and method not in selected:
                continue
            model = make()
            start = time.perf_counter()
            model.fit(X)
            seconds = time.perf_counter() - start
            chosen = None
            if isinstance(model, GridSearchCV):
                # NumPy scalars (KDE's bandwidths) as plain numbers for the JSON.
                chosen = {k: np.asarray(v).item() for k, v in model.best_params_.items()}
                model = model.best_estimator_
            learned = model.score_samples(truth)
            gap = true_log_density - learned
            results[name][method] = {
                "kl_true_model": float(gap.mean()),
                "kl_standard_error": float(gap.std(ddof=1) / math.sqrt(len(gap))),
                "held_out_log_likelihood": float(learned.mean()),
                "fit_seconds": seconds,
                "epochs": getattr(model, "n_epochs_", None),
                "chosen_by_cv": chosen,
            }
            print(
                f"{name:14s} {method:40s} KL(true||model) = {gap.mean():.4f}"
                f" +- {results[name][method]['kl_standard_error']:.4f}, held-out"
                f" {learned.mean():.4f}  ({seconds:.1f}s)",
                flush=True,
            )
            if method == "FlowDensityEstimator (defaults)":
                xs = np.linspace(-3, 3, 50 if quick else 200)
                grid = np.stack(np.meshgrid(xs, xs), -1).reshape(-1, 2)
                grids[name] = (xs, np.exp(log_density(grid)), np.exp(model.score_samples(grid)))
    return results, grids


def plot_toys(grids: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(grids), figsize=(4 * len(grids), 8))
    for column, (name, (xs, true, learned)) in enumerate(grids.items()):
        for row, (values, label) in enumerate([(true, "true"), (learned, "default flow")]):
            ax = axes[row, column]
            ax.imshow(
                values.reshape(len(xs), len(xs)),
                origin="lower",
                extent=(xs[0], xs[-1], xs[0], xs[-1]),
                cmap="viridis",
            )
            ax.set_title(f"{name}: {label}")
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


# ---------------------------------------------------------------------------------------
# Digits: this project's flows against zuko and nflows
# ---------------------------------------------------------------------------------------

LAYERS, HIDDEN, BATCH, LR, EPOCHS, PATIENCE, ALPHA, LEVELS = (
    8,
    (256, 256),
    128,
    1e-3,
    100,
    10,
    0.05,
    17,
)


class _IgnoreContext(torch.nn.Module):
    """nflows' coupling calls ``net(x, context)``; its plain MLP takes ``net(x)`` only."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x, context=None):
        return self.net(x)


class ExternalFlow:
    """A zuko or nflows flow trained with the same Trainer, dequantisation and logit map."""

    def __init__(self, library: str, n_features: int, seed: int, n_epochs: int = EPOCHS) -> None:
        torch.manual_seed(seed)
        self.library = library
        self.n_epochs = n_epochs
        self.logit = Logit(LEVELS, ALPHA)
        if library == "zuko":
            import zuko

            self.flow = zuko.flows.RealNVP(n_features, transforms=LAYERS, hidden_features=HIDDEN)
        elif library == "zuko-nsf":
            import zuko

            self.flow = zuko.flows.NSF(
                n_features, transforms=LAYERS, hidden_features=HIDDEN, bins=8
            )
        else:
            from nflows import distributions, flows, transforms
            from nflows.nn.nets import MLP

            layers = []
            mask = torch.ones(n_features)
            mask[::2] = -1
            for _ in range(LAYERS):
                layers.append(
                    transforms.AffineCouplingTransform(
                        mask=mask.clone(),
                        transform_net_create_fn=lambda i, o: _IgnoreContext(
                            MLP([i], [o], hidden_sizes=list(HIDDEN))
                        ),
                    )
                )
                mask *= -1
            self.flow = flows.Flow(
                transforms.CompositeTransform(layers), distributions.StandardNormal([n_features])
            )

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        y, ladj = self.logit(x)
        if self.library.startswith("zuko"):
            return self.flow().log_prob(y) + ladj
        return self.flow.log_prob(y) + ladj

    def fit(self, X: np.ndarray, seed: int):
        rng = np.random.RandomState(seed)
        order = rng.permutation(len(X))
        n_validation = math.ceil(0.1 * len(X))
        data = torch.tensor(X, dtype=torch.float32)
        validation, train = data[order[:n_validation]], data[order[n_validation:]]
        generator = torch.Generator().manual_seed(seed)
        validation_noise = torch.rand(validation.shape, generator=torch.Generator().manual_seed(1))

        def loss(batch, g):
            (x,) = batch
            return -self.log_prob(x + torch.rand(x.shape, generator=g)).mean()

        def evaluate(data):
            return float(-self.log_prob(data[0] + validation_noise).mean())

        module = self.flow
        trainer = Trainer(n_epochs=self.n_epochs, batch_size=BATCH, lr=LR, patience=PATIENCE)
        self.history = trainer.fit(module, loss, (train,), generator, (validation,), evaluate)
        self.n_train = len(train)
        return self

    def score_samples(self, X: np.ndarray, n_draws: int = 10) -> np.ndarray:
        x = torch.tensor(X, dtype=torch.float32)
        noise = torch.rand(n_draws, 1, X.shape[1], generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            draws = (x[None] + noise).reshape(-1, X.shape[1])
            # The importance-weighted bound FlowDensityEstimator.score_samples reports (q = 1).
            log_p = self.log_prob(draws).reshape(n_draws, -1)
            return (torch.logsumexp(log_p, 0) - math.log(n_draws)).double().numpy()

    def sample(self, n: int) -> np.ndarray:
        with torch.no_grad():
            y = self.flow().sample((n,)) if self.library.startswith("zuko") else self.flow.sample(n)
            return np.floor(self.logit.inverse(y)[0].numpy())


PARAMETER_MATCHED = "impute-dgm spline + LU + variational, 13 layers (NSF's parameters)"


def digits_methods(quick: bool) -> dict:
    epochs = 2 if quick else EPOCHS
    common = dict(
        dequantize=True,
        n_levels=LEVELS,
        logit_alpha=ALPHA,
        batch_size=BATCH,
        lr=LR,
        n_epochs=epochs,
        n_iter_no_change=PATIENCE,
        lr_schedule="constant",
    )
    spline = dict(coupling="spline", n_bins=8, n_layers=LAYERS, hidden_dims=HIDDEN)
    return {
        "impute-dgm RealNVP (tabular)": lambda seed: FlowDensityEstimator(
            coupling="affine", n_layers=LAYERS, hidden_dims=HIDDEN, random_state=seed, **common
        ),
        "impute-dgm spline (tabular)": lambda seed: FlowDensityEstimator(
            random_state=seed, **spline, **common
        ),
        "impute-dgm spline + variational dequantisation": lambda seed: FlowDensityEstimator(
            random_state=seed, **spline, **{**common, "dequantize": "variational"}
        ),
        # Coupling layers transform half the features each; zuko's autoregressive NSF transforms
        # all of them, with 1.75x the parameters at the same layers and widths. This row
        # matches its parameter count instead (13 couplings with LU layers and the dequantiser).
        PARAMETER_MATCHED: lambda seed: FlowDensityEstimator(
            coupling="spline",
            n_bins=8,
            n_layers=13,
            hidden_dims=HIDDEN,
            invertible_linear=True,
            random_state=seed,
            **{**common, "dequantize": "variational"},
        ),
        "impute-dgm RealNVP (image, multi-scale)": lambda seed: FlowDensityEstimator(
            architecture="image",
            image_shape=(8, 8),
            n_layers=4,
            hidden_channels=32,
            n_blocks=1,
            normalization="actnorm",
            random_state=seed,
            **{**common, "n_epochs": 2 if quick else 40},
        ),
        "zuko RealNVP": lambda seed: ExternalFlow("zuko", 64, seed, epochs),
        "zuko NSF": lambda seed: ExternalFlow("zuko-nsf", 64, seed, epochs),
        "nflows affine coupling": lambda seed: ExternalFlow("nflows", 64, seed, epochs),
    }


def run_digits(seeds: int, quick: bool) -> dict:
    X = load_digits().data[: 500 if quick else None]  # --quick: a smoke run, not a figure
    n_sampled = 10 if quick else 5000  # zuko's NSF samples ~60 rows/s (autoregressive)
    n_warm_up = min(100, n_sampled)
    records: dict[str, dict[str, list]] = {}
    for seed in range(seeds):
        order = np.random.default_rng(seed).permutation(len(X))
        n_test = int(0.2 * len(X))
        X_test, X_train = X[order[:n_test]], X[order[n_test:]]
        for name, make in digits_methods(quick).items():
            model = make(seed)
            start = time.perf_counter()
            if isinstance(model, ExternalFlow):
                model.fit(X_train, seed)
                history, n_train = model.history, model.n_train
            else:
                model.fit(X_train)
                history, n_train = model.history_, math.floor(0.9 * len(X_train))
            fit_seconds = time.perf_counter() - start
            scores = model.score_samples(X_test)
            bits = float(-scores.mean() / (64 * math.log(2)))
            if isinstance(model, ExternalFlow):
                model.sample(n_warm_up)
                start = time.perf_counter()
                model.sample(n_sampled)
            else:
                model.sample(n_warm_up, random_state=0)
                start = time.perf_counter()
                model.sample(n_sampled, random_state=0)
            sample_rate = n_sampled / (time.perf_counter() - start)
            record = records.setdefault(
                name,
                {
                    k: []
                    for k in (
                        "bits_per_dim",
                        "nll_nats",
                        "fit_seconds",
                        "train_rows_per_s",
                        "sample_rows_per_s",
                        "epochs",
                        "parameters",
                    )
                },
            )
            record["bits_per_dim"].append(bits)
            record["nll_nats"].append(float(-scores.mean()))
            record["fit_seconds"].append(fit_seconds)
            record["train_rows_per_s"].append(n_train * len(history.train_loss) / history.seconds)
            record["sample_rows_per_s"].append(sample_rate)
            record["epochs"].append(len(history.train_loss))
            module = model.flow if isinstance(model, ExternalFlow) else model.model_
            record["parameters"].append(sum(p.numel() for p in module.parameters()))
            print(
                f"seed {seed} {name:40s} {bits:.3f} bits/dim  {fit_seconds:6.1f}s  "
                f"{record['train_rows_per_s'][-1]:8.0f} rows/s  best epoch {history.best_epoch}",
                flush=True,
            )
    return {name: {k: summarise(v) for k, v in rec.items()} for name, rec in records.items()}


def print_toys(toys: dict, quick: bool) -> None:
    print(f"\nToy densities (KL and held-out log-likelihood on {toy_rows(quick)[1]:,} fresh draws)")
    print_table(
        [
            {
                "data": toy,
                "method": method,
                "kl": f"{r['kl_true_model']:.4f} +- {r['kl_standard_error']:.4f}",
                "ll": f"{r['held_out_log_likelihood']:.4f}",
                "s": f"{r['fit_seconds']:.1f}",
            }
            for toy, per_method in toys.items()
            for method, r in per_method.items()
        ],
        [
            ("data", "data"),
            ("method", "method"),
            ("kl", "KL(true || model), nats"),
            ("ll", "held-out log-lik"),
            ("s", "fit s"),
        ],
    )


def _write_update(
    args, earlier: dict, toys: dict, rerun: set, png: Path | None, results_dir: Path
) -> dict:
    """``--update``: the earlier file with the ``rerun`` toy methods folded in, its digits
    block kept (and its figure, unless the defaults were rerun)."""
    toys = {
        toy: fold_methods(methods, toys.get(toy, {}), rerun)
        for toy, methods in earlier["toy"].items()
    }
    print_toys(toys, args.quick)
    payload = {
        **earlier,
        "toy": toys,
        "toy_png": png.name if png is not None else earlier["toy_png"],
        "updated_toy_methods": sorted(rerun),
        "updated_environment": environment(),
    }
    path = write_json(args.output, payload, results_dir)
    print(f"\nwrote {path}")
    return payload


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="tiny settings, for smoke tests")
    parser.add_argument("--output", default="flows.json")
    parser.add_argument("--results-dir", default=str(RESULTS))
    parser.add_argument("--toy-methods", nargs="*", default=None, choices=list(toy_methods(False)),
                        help="toy methods to run (default: all)")  # fmt: skip
    parser.add_argument("--update", default=None, metavar="JSON",
                        help="rerun only --toy-methods on the toys (same draws), replace their "
                             "results in this file's and keep its digits block, writing "
                             "--output")  # fmt: skip
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    earlier = json.loads(Path(args.update).read_text()) if args.update else None
    selected = set(args.toy_methods) if args.toy_methods is not None else None

    print(f"Toy 2D densities ({toy_rows(args.quick)[0]:,} training draws)")
    toys, grids = run_toys(args.quick, selected)
    results_dir = Path(args.results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    png = results_dir / ("flows_toy_quick.png" if args.quick else "flows_toy.png")
    if grids:
        plot_toys(grids, png)
    if earlier is not None:
        rerun = selected or set(toy_methods(args.quick))
        return _write_update(args, earlier, toys, rerun, png if grids else None, results_dir)

    print("\nDigits, dequantised + logit, 8 couplings of (256, 256), early stopping")
    digits = run_digits(args.seeds, args.quick)
    best_external = {
        "bits_per_dim": min(
            digits[n]["bits_per_dim"]["mean"] for n in ("zuko RealNVP", "nflows affine coupling")
        ),
        "train_rows_per_s": max(
            digits[n]["train_rows_per_s"]["mean"]
            for n in ("zuko RealNVP", "nflows affine coupling")
        ),
    }
    ours = digits["impute-dgm RealNVP (tabular)"]
    ratios = {
        "bits_per_dim_ours_over_best_external": ours["bits_per_dim"]["mean"]
        / best_external["bits_per_dim"],
        "train_rows_per_s_ours_over_best_external": ours["train_rows_per_s"]["mean"]
        / best_external["train_rows_per_s"],
        # Splines against the spline flow of the field (zuko's NSF), same size and training.
        "spline_bits_per_dim_minus_zuko_nsf": digits["impute-dgm spline (tabular)"]["bits_per_dim"][
            "mean"
        ]
        - digits["zuko NSF"]["bits_per_dim"]["mean"],
        "spline_train_rows_per_s_over_zuko_nsf": digits["impute-dgm spline (tabular)"][
            "train_rows_per_s"
        ]["mean"]
        / digits["zuko NSF"]["train_rows_per_s"]["mean"],
    }
    for name in ("impute-dgm spline + variational dequantisation", PARAMETER_MATCHED):
        ratios[f"{name}: bits_per_dim_minus_zuko_nsf"] = (
            digits[name]["bits_per_dim"]["mean"] - digits["zuko NSF"]["bits_per_dim"]["mean"]
        )
        ratios[f"{name}: train_rows_per_s_over_zuko_nsf"] = (
            digits[name]["train_rows_per_s"]["mean"]
            / digits["zuko NSF"]["train_rows_per_s"]["mean"]
        )

    print_toys(toys, args.quick)
    print(f"\nDigits, {args.seeds} seeds (test 20%)")
    print_table(
        [
            {
                "method": n,
                "bits": f"{r['bits_per_dim']['mean']:.3f} +- {r['bits_per_dim']['sd']:.3f}",
                "nll": f"{r['nll_nats']['mean']:.1f}",
                "fit": f"{r['fit_seconds']['mean']:.1f}",
                "train": f"{r['train_rows_per_s']['mean']:.0f}",
                "sample": f"{r['sample_rows_per_s']['mean']:.0f}",
                "epochs": f"{np.mean(r['epochs']['values']):.0f}",
                "parameters": f"{r['parameters']['mean'] / 1e6:.2f}M",
            }
            for n, r in digits.items()
        ],
        [
            ("method", "method"),
            ("bits", "test bits/dim"),
            ("nll", "test NLL nats"),
            ("fit", "fit s"),
            ("train", "train rows/s"),
            ("sample", "sample rows/s"),
            ("epochs", "epochs run"),
            ("parameters", "parameters"),
        ],
    )
    print(
        "\nratios (ours tabular / best of zuko, nflows):",
        {k: round(v, 3) for k, v in ratios.items()},
    )
    payload = {
        "benchmark": "flows",
        "quick": args.quick,
        "seeds": args.seeds,
        "toy": toys,
        "toy_png": png.name,
        "digits": {
            "data": "sklearn digits 1797 x 64, levels 0..16, uniform (or variational) "
            f"dequantisation + logit (alpha {ALPHA}); 20% test split per seed; 10% of the rest "
            "for early stopping; test bits/dim from the importance-weighted bound over 10 noise "
            "draws, for every method",
            "settings": {
                "layers": LAYERS,
                "hidden": list(HIDDEN),
                "batch_size": BATCH,
                "lr": LR,
                "max_epochs": EPOCHS,
                "patience": PATIENCE,
            },
            "results": digits,
            "ratios": ratios,
        },
        "environment": environment(),
    }
    path = write_json(args.output, payload, results_dir)
    print(f"\nwrote {path} and {png}")
    return payload


if __name__ == "__main__":
    main()
