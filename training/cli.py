"""Command line for training: `python -m training label|train|tune|evaluate|export ...`."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from scraper.categories import DEFAULT_CATEGORIES, CategoriesError, load_categories

log = logging.getLogger(__name__)

SHARED_MODELS = Path("../shared/models")


def _cmd_label(args: argparse.Namespace) -> int:
    """Label a manifest with the chosen teacher, then write a contact sheet."""
    from .label import LabelConfig, contact_sheet, label_manifest
    from .teacher import ISNetConfig, ISNetTeacher

    classes = load_categories(args.categories).classes
    cfg = LabelConfig(manifest=args.manifest, out=args.out, classes=classes,
                      include_unclassed=args.include_unclassed, limit=args.limit)
    if args.teacher == "isnet":
        teacher = ISNetTeacher(ISNetConfig(model_path=args.isnet_model, threads=args.threads))
    else:
        from .detectron2_teacher import Detectron2Teacher

        teacher = Detectron2Teacher.from_config(classes=classes)
    summary = label_manifest(cfg, teacher)
    print(f"labelled {summary.ok}, already done {summary.skipped_done}, rejected {summary.rejected}")
    if args.sheet:
        print(f"contact sheet: {contact_sheet(cfg, args.sheet)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser with one sub-command per job."""
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("label", help="label product photos with a teacher model (resumable)")
    p.add_argument("--manifest", type=Path, default=Path("data/ikea/manifest.jsonl"))
    p.add_argument("--out", type=Path, default=Path("data/labels"))
    p.add_argument("--categories", type=Path, default=DEFAULT_CATEGORIES)
    p.add_argument("--teacher", choices=["isnet", "detectron2"], default="isnet")
    p.add_argument("--isnet-model", type=Path, default=SHARED_MODELS / "isnet_small.onnx")
    p.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0: all cores)")
    p.add_argument("--include-unclassed", action="store_true",
                   help="also label products with no class (generic foreground, labelled 255)")
    p.add_argument("--limit", type=int, default=None, help="label at most N new images")
    p.add_argument("--sheet", type=Path, default=None, help="write a contact sheet PNG here")
    p.set_defaults(func=_cmd_label)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the command, turn expected failures into a one-line error and exit code 2."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (CategoriesError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        print("interrupted: everything written so far is kept; run again to resume")
        return 130
