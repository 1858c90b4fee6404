#!/usr/bin/env bash
# The GPU figures of the scaling benchmark, as one prepared run on a CUDA machine (the
# project's CPU machines and CI have no GPU). Run from the repository root; results go to
# $OUT (else benchmarks/results): scaling_cuda_large.json (100k and 1M rows, VAEImputer on
# CUDA), scaling_cuda_small.json (10k rows, and transform against n_eval_samples), logs, and
# the test suite run with device="auto" resolving to CUDA. Every step has its own time limit
# so that one slow step cannot take the others' time (about 10 minutes on an H100 in all;
# SCALING=0 skips the two scaling runs: the smoke test and the test suite take about 4).
# benchmarks/results/scaling_cuda.json merges the two scaling files.
set -u
out=${OUT:-benchmarks/results}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
python=${PYTHON:-python3}
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  $python -c "import torch, sklearn, numpy, pandas; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'sklearn', sklearn.__version__, 'numpy', numpy.__version__, 'pandas', pandas.__version__)"
  timeout 90 $python - <<'PY'
# Smoke test: a small fit, transform and score on CUDA; observed cells kept, nothing NaN.
import numpy as np, torch
from impute_dgm import FlowDensityEstimator, VAEImputer
from impute_dgm.missingness import ampute
X = np.random.default_rng(0).normal(size=(500, 6)); X[:, 1] += X[:, 0]
Xm = ampute(X, 0.3, "mcar", random_state=0)
imp = VAEImputer(device="cuda", n_epochs=5, random_state=0).fit(Xm)
out = imp.transform(Xm)
assert next(imp.model_.parameters()).is_cuda
assert np.isfinite(out).all() and np.array_equal(out[~np.isnan(Xm)], Xm[~np.isnan(Xm)])
print("VAEImputer on", next(imp.model_.parameters()).device, "score", imp.score(Xm))
flow = FlowDensityEstimator(device="cuda", n_epochs=3, random_state=0).fit(X)
print("flow on cuda, score", flow.score(X), "sample", flow.sample(3, random_state=0).shape)
# A mixed table: categories of different level counts in one block, counts, flags.
import pandas as pd
rng = np.random.default_rng(1)
frame = pd.DataFrame({"x": rng.normal(size=300), "n": rng.poisson(3, 300),
                      "flag": rng.random(300) > 0.5,
                      "colour": pd.Categorical(rng.choice(["r", "g", "b"], 300)),
                      "size": pd.Categorical(rng.choice(["s", "l"], 300))})
holes = ampute(frame, 0.3, "mcar", random_state=0)
mixed = VAEImputer(device="cuda", n_epochs=5, random_state=0).fit(holes)
filled = mixed.transform(holes)
assert filled.notna().all().all() and (filled.dtypes == holes.dtypes).all()
draws = mixed.sample_imputations(holes, n_imputations=2, random_state=0)
print("mixed table on cuda, score", mixed.score(holes), "draws", len(draws))
PY
} 2>&1 | tee "$out/gpu_smoke.log"
if [ "${SCALING:-1}" != 0 ]; then
timeout 300 $python benchmarks/scaling.py --methods VAEImputer --sizes 100000 1000000 \
  --vae-params '{"device": "cuda"}' --threads 4 --timeout 140 --skip-eval-samples \
  --results-dir "$out" --output scaling_cuda_large.json 2>&1 | tee "$out/gpu_scaling_large.log"
timeout 340 $python benchmarks/scaling.py --methods VAEImputer --sizes 10000 \
  --vae-params '{"device": "cuda"}' --threads 4 --timeout 270 \
  --results-dir "$out" --output scaling_cuda_small.json 2>&1 | tee "$out/gpu_scaling_small.log"
fi
# The test suite with device="auto" resolving to CUDA (about 3 minutes on 14 workers).
timeout "${TEST_SECONDS:-300}" $python -m pytest -q -rfE -n 14 -p no:cacheprovider -p no:benchmark \
  tests > "$out/gpu_tests.log" 2>&1
tail -15 "$out/gpu_tests.log"
