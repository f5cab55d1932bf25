"""SQLite catalogue connection per request (Flask-tutorial style) and the init-db / import-catalogue commands."""
from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import click
from flask import Flask, current_app, g
from flask.cli import with_appcontext

log = logging.getLogger(__name__)


def get_db() -> sqlite3.Connection:
    """The request's database connection, opened on first use."""
    if "db" not in g:
        g.db = sqlite3.connect(current_app.config["DATABASE"], detect_types=sqlite3.PARSE_DECLTYPES)
        g.db.row_factory = sqlite3.Row
    return g.db


def close_db(e: BaseException | None = None) -> None:
    """Close the request's connections (the catalogue's, and the shoppers' products'), those that were opened."""
    for key in ("db", "shopper_db"):
        db = g.pop(key, None)
        if db is not None:
            db.close()


def init_db() -> None:
    """Create (or re-create) the tables."""
    Path(current_app.config["DATABASE"]).parent.mkdir(parents=True, exist_ok=True)
    db = get_db()
    with current_app.open_resource("schema.sql") as f:
        db.executescript(f.read().decode("utf-8"))


@click.command("init-db")
@with_appcontext
def init_db_command() -> None:
    """Clear the catalogue and create new tables."""
    init_db()
    click.echo(f"Initialised the database at {current_app.config['DATABASE']}.")


@click.command("import-catalogue")
@with_appcontext
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--all-classes/--classified-only", default=False,
              help="Also import products the class mapping left unclassified.")
def import_catalogue_command(source: Path, all_classes: bool) -> None:
    """Import products from a scraper manifest.jsonl or a CSV file (upserts by sku)."""
    from .catalogue import CatalogueError, import_file

    # One line instead of a traceback; import_file has rolled back by now, so nothing was half imported.
    try:
        stats = import_file(get_db(), source, include_unclassified=all_classes)
    except CatalogueError as exc:
        raise click.ClickException(str(exc)) from exc
    except (sqlite3.Error, OSError) as exc:
        raise click.ClickException(f"{source}: import failed, the catalogue is unchanged: {exc}") from exc
    click.echo(f"Imported {stats.imported} products from {source} "
               f"({stats.skipped} skipped: missing image, unclassified or a value of the wrong type).")


def init_app(app: Flask) -> None:
    """Register the teardown and the CLI commands."""
    app.teardown_appcontext(close_db)
    app.cli.add_command(init_db_command)
    app.cli.add_command(import_catalogue_command)
