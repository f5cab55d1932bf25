"""Model 1.x against 2.x as served: the quality table of `python -m training served-eval` (models/eval/served.json,
every photo through core's decoding, the TFLite file, model.json's refinement and decision) beside file size and
ai-edge-litert latency (1 thread, interleaved rounds so a shared CPU slows both alike). Run `make bench`."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.model_bench import interleaved_latency  # noqa: E402

TARGETS = {  # issue 15
    "cross-shop overall: fg IoU": "≥ 0.90",
    "cross-shop scene: fg IoU": "≥ 0.85",
    "cross-shop overall: category accuracy": "≥ 0.90",
    "ikea (classed): fg IoU": "≥ 0.927 − CI",
    "ikea + cross-shop: category accuracy": "≥ 0.90",
    "negatives: share given a product": "≤ 0.05",
    "fp16 TFLite (MB)": "≤ 4",
    "litert fp16 ms (1 thread)": "≤ 8",
}


def _ci(bounds: list[float] | None) -> str:
    """A 95% interval as table text."""
    return "" if not bounds else " ({:.3f}–{:.3f})".format(*bounds)


def quality_rows(result: dict) -> dict[str, str]:
    """One model's rows from a served-eval result."""
    rows: dict[str, str] = {}

    def block(name: str, g: dict, accuracy: bool = True) -> None:
        rows[f"{name}: photos"] = str(g["images"])
        rows[f"{name}: fg IoU"] = f"{g['foreground_iou']:.3f}{_ci(g.get('foreground_iou_ci95'))}"
        if accuracy and g.get("classed_images"):
            rows[f"{name}: category accuracy"] = (f"{g['category_accuracy']:.3f}"
                                                  f"{_ci(g.get('category_accuracy_ci95'))}")
            rows[f"{name}: named (not unknown)"] = f"{g['labelled_share']:.3f}"
            rows[f"{name}: accuracy when named"] = f"{g['accuracy_when_labelled']:.3f}"
        rows[f"{name}: answered no product"] = str(g["no_product"])

    block("ikea (classed)", result["ikea"])
    block("ikea (all products)", result["ikea_products"], accuracy=False)
    for group, g in result["cross_shop"].items():
        block(f"cross-shop {group}", g)
    both = result["category_both"]
    rows["ikea + cross-shop: category accuracy"] = (f"{both['category_accuracy']:.3f}"
                                                    f"{_ci(both.get('category_accuracy_ci95'))}")
    neg = result["negatives"]
    rows[f"negatives: share given a product"] = (f"{neg['false_positive_rate']:.3f}{_ci(neg['false_positive_rate_ci95'])}"
                                                 f" ({neg['with_product']}/{neg['images']})")
    return rows


def main(argv: list[str] | None = None) -> int:
    """Print the side-by-side table."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--served", type=Path, default=Path("models/eval/served.json"))
    p.add_argument("--rounds", type=int, default=200)
    args = p.parse_args(argv)
    if not args.served.is_file():
        print(f"error: {args.served} missing: run `make served-eval` first")
        return 2
    served = json.loads(args.served.read_text())
    results = served["results"]
    names = [f"{r['model']['name']} {r['model']['version']}" for r in results]
    table = {name: quality_rows(r) for name, r in zip(names, results)}
    files = {}
    for name, r in zip(names, results):
        meta = json.loads((Path(r["model"]["dir"]) / "model.json").read_text())
        entry = meta["files"][meta["serving_file"]]
        files[name] = Path(r["model"]["dir"]) / entry["path"]
        table[name]["input"] = f"{meta['input']['height']}×{meta['input']['width']}"
        table[name]["fp16 TFLite (MB)"] = f"{entry['bytes'] / 1e6:.2f}"
        table[name]["decision (no product / unknown class)"] = "yes" if meta.get("decision") else "no"
    latency = interleaved_latency(files, threads=1, rounds=args.rounds)
    for name in names:
        table[name]["litert fp16 ms (1 thread)"] = f"{latency[name]:.2f}"
    keys = list(dict.fromkeys(k for name in names for k in table[name]))
    print(f"photos: {served['dataset']} (test split)\n")
    print("| metric | " + " | ".join(names) + " | target |")
    print("|---|" + "---:|" * len(names) + "---|")
    for k in keys:
        print(f"| {k} | " + " | ".join(table[n].get(k, "") for n in names) + f" | {TARGETS.get(k, '')} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
