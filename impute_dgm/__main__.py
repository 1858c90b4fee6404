"""``python -m impute_dgm`` runs the command line (see :mod:`impute_dgm.cli`)."""

from __future__ import annotations

from impute_dgm.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
