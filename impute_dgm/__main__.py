"""Command line: ``python -m impute_dgm demo`` (the README's first set-up command)."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="impute-dgm", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="impute breast cancer data with 50%% removed")
    demo.add_argument("--missing-rate", type=float, default=0.5)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from impute_dgm.demo import run_demo

        run_demo(args.missing_rate, args.seed, verbose=0 if args.quiet else 1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
