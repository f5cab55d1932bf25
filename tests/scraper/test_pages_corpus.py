"""The annotated real shop pages (../shared/data/pages, skipped when absent): picture recall and foreign share.

The issue's targets are recall >= 0.95 and foreign <= 5%; the extractor reaches recall 1.000 and foreign 0.9% on the
52 pages, and these floors leave a little room (see benchmarks/extract_bench.py for the per-page table).
"""
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = REPO.parent / "shared" / "data" / "pages"
sys.path.insert(0, str(REPO / "benchmarks"))


@pytest.mark.skipif(not (PAGES / "pages.csv").exists(), reason="real page corpus not available")
def test_annotated_pages_recall_and_foreign_share():
    import extract_bench
    scores = extract_bench.run(PAGES)
    totals = extract_bench.totals(scores)
    assert totals["pages"] >= 40
    assert totals["recall"] >= 0.98
    assert totals["foreign"] <= 0.03
    assert totals["duplicates"] <= 0.06
    assert totals["max"] < 3.0  # generous: a loaded CI machine; the benchmark reports the real times
