"""sources.yaml loading and the crawl command line: bad input is one clear line and exit code 2."""
from pathlib import Path

import pytest

from scraper.cli import main
from scraper.config import ConfigError, load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "scraper" / "sources.example.yaml"
GOOD = "sources:\n  - name: a\n    start_urls: [https://shop.example/c/sofas]\n"


def test_example_config_loads_with_defaults():
    cfg = load_config(EXAMPLE)
    assert [s.name for s in cfg.sources] == ["example-shopify", "example-woocommerce", "example-custom"]
    assert cfg.categories.is_file()  # relative to the config file
    woo = cfg.sources[1]
    assert woo.category is None and woo.allowed_domains == ["furniture.example.org"]  # auto; default domains
    assert cfg.sources[2].selectors.image == ".pdp-viewer img"
    assert cfg.http.max_retry_after == 120 and cfg.images.min_side == 256


@pytest.mark.parametrize("text, message", [
    ("sources: [\n", "invalid YAML"),
    ("- just a list\n", "expected a mapping"),
    ("sources: []\n", "'sources' is empty"),
    ("{}\n", "missing required key 'sources'"),
    (GOOD + "    max_page: 3\n", "unknown key 'max_page'"),
    (GOOD + "    max_pages: many\n", "max_pages: expected int"),
    (GOOD + "    product_pages: yes please\n", "expected true or false"),
    (GOOD + "    selectors: {image: 'div[['}\n", "selectors.image is not a valid CSS selector"),
    (GOOD + "    min_delay: -1\n", "min_delay"),
    ("sources:\n  - name: a\n    start_urls: [shop.example/sofas]\n", "is not an http(s) URL"),
    ("sources:\n  - {name: a, start_urls: [http://x.example/]}\n  - {name: a, start_urls: [http://y.example/]}\n",
     "unique"),
    ("http: {read_timeout: 0}\n" + GOOD, "read_timeout must be > 0"),
    ("images: {min_side: true}\n" + GOOD, "min_side: expected int"),
])
def test_bad_configs_are_named_clearly(tmp_path, text, message):
    path = tmp_path / "sources.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        load_config(path)


@pytest.mark.parametrize("args, message", [
    (["--config", "{tmp}/missing.yaml"], "config file not found"),
    (["--config", "{tmp}/bad.yaml"], "unknown key 'start_url'"),
    (["--config", "{tmp}/good.yaml", "--source", "nope"], "no source named 'nope'"),
    (["--config", "{tmp}/good.yaml", "--categories", "{tmp}/missing-categories.yaml"], "categories file not found"),
    (["--config", "{tmp}/good.yaml", "--out", "{tmp}/good.yaml"], "Not a directory"),  # --out names a file
])
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    (tmp_path / "bad.yaml").write_text("sources:\n  - name: a\n    start_url: http://x.example/\n")
    (tmp_path / "good.yaml").write_text(GOOD)
    code = main(["crawl", "--out", str(tmp_path / "out")] + [a.format(tmp=tmp_path) for a in args])
    out = capsys.readouterr()
    assert code == 2
    assert out.out.startswith("error: ") and message in out.out and len(out.out.strip().splitlines()) == 1
    assert "Traceback" not in out.out + out.err


def test_cli_crawl_prints_the_summary(shop, tmp_path, capsys):
    config = shop.write_config(tmp_path / "sources.yaml")
    assert main(["crawl", "--config", str(config), "--out", str(tmp_path / "raw"), "--source", "custom",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "images saved" in out and "page_robots_disallowed" in out
    assert (tmp_path / "raw" / "manifest.jsonl").read_text().count("\n") == 8
