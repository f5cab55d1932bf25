"""The command-line runner every part shares: parse, set up logging, turn expected errors into one line."""
from __future__ import annotations

import argparse
import logging


def run_cli(parser: argparse.ArgumentParser, argv: list[str] | None,
            expected: tuple[type[BaseException], ...]) -> int:
    """Parse, set up logging and run `args.func`; an `expected` error becomes "error: ..." and exit code 2, Ctrl-C
    exit code 130 (shared by the scraper and training command lines)."""
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except expected as exc:
        print(f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        print("interrupted: everything written so far is kept; run again to resume")
        return 130
