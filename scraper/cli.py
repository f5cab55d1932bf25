"""Command line for the scraper: `python -m scraper import-dataset|crawl ...`."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from core.cli import run_cli
from core.categories import DEFAULT_CATEGORIES, CategoriesError, load_categories
from .config import ConfigError, load_config
from .crawl import Crawler
from .import_dataset import ImportConfig, import_dataset

log = logging.getLogger(__name__)


def _cmd_import(args: argparse.Namespace) -> int:
    """Run import-dataset and print its summary."""
    categories = load_categories(args.categories)
    summary = import_dataset(ImportConfig(dataset_dir=args.dataset, out=args.out, source=args.source), categories)
    print(f"manifest: {args.out}")
    for key, value in vars(summary).items():
        print(f"  {key:<10} {value}")
    return 0


def _cmd_crawl(args: argparse.Namespace) -> int:
    """Run the crawl for the configured sources and print the summary table."""
    cfg = load_config(args.config)
    unknown = sorted(set(args.source or ()) - {s.name for s in cfg.sources})
    if unknown:
        raise ConfigError(f"{args.config}: no source named {unknown[0]!r}")
    categories = load_categories(args.categories or cfg.categories)
    with Crawler(cfg, args.out, categories, progress=not args.no_progress) as crawler:
        try:
            stats = crawler.run(only=args.source or None)
        finally:
            # Printed on Ctrl-C too: what was kept so far is in the manifest.
            print(f"manifest: {crawler.store.manifest_path}")
            print(crawler.stats.summary())
    return 0 if stats.images or stats.products_resumed or stats.images_resumed else 1


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser with one sub-command per job."""
    parser = argparse.ArgumentParser(prog="python -m scraper", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("import-dataset", help="write manifest.jsonl for a local folder with products.csv")
    p.add_argument("--dataset", type=Path, default=Path("../shared/data/ikea"), help="folder with products.csv")
    p.add_argument("--out", type=Path, default=Path("data/ikea/manifest.jsonl"), help="manifest to write/extend")
    p.add_argument("--categories", type=Path, default=DEFAULT_CATEGORIES, help="categories.yaml rules")
    p.add_argument("--source", default="ikea", help="source name recorded in the manifest")
    p.set_defaults(func=_cmd_import)

    p = sub.add_parser("crawl", help="crawl shop listing/product pages into images + manifest.jsonl")
    p.add_argument("--config", type=Path, required=True, help="sources.yaml (see scraper/sources.example.yaml)")
    p.add_argument("--out", type=Path, default=Path("data/raw"), help="output folder (images/, manifest.jsonl)")
    p.add_argument("--categories", type=Path, default=None, help="categories.yaml rules (default: from the config)")
    p.add_argument("--source", action="append", help="crawl only this source (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (for logs and CI)")
    p.set_defaults(func=_cmd_crawl)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the scraper command line."""
    # OSError: a missing file, an --out that is a file, a folder we may not write: one line, not a traceback.
    return run_cli(build_parser(), argv, (CategoriesError, ConfigError, OSError, ValueError))
