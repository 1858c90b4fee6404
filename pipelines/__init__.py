"""Ready-made scikit-learn pipelines built on impute-dgm estimators, and scripts that run them."""

from pipelines.factories import (
    make_embed_classify_pipeline,
    make_impute_classify_pipeline,
    make_semi_supervised_impute_spread,
    make_semi_supervised_m1,
)

__all__ = [
    "make_embed_classify_pipeline",
    "make_impute_classify_pipeline",
    "make_semi_supervised_impute_spread",
    "make_semi_supervised_m1",
]
