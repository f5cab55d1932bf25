"""Command line for training: `python -m training label|cutouts|train|tune|evaluate|export|probe ...`."""
from __future__ import annotations

import argparse
import functools
import logging
from pathlib import Path

from core.categories import DEFAULT_CATEGORIES, CategoriesError, load_categories
from core.cli import run_cli

log = logging.getLogger(__name__)

SHARED_MODELS = Path("../shared/models")
ENCODER_WEIGHTS = SHARED_MODELS / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"


def _cmd_label(args: argparse.Namespace) -> int:
    """Label a manifest with the chosen teacher, then write a contact sheet."""
    from .label import LabelConfig, contact_sheet, label_manifest
    from .teacher import ISNetConfig, ISNetTeacher

    classes = load_categories(args.categories).classes
    cfg = LabelConfig(manifest=args.manifest, out=args.out, classes=classes,
                      include_unclassed=args.include_unclassed, limit=args.limit,
                      cache=None if args.no_cache else args.cache)
    if args.teacher == "isnet":
        gpu = ("CUDAExecutionProvider",) if args.gpus_per_worker > 0 else ()
        factory = functools.partial(ISNetTeacher, ISNetConfig(model_path=args.isnet_model, threads=args.threads,
                                                              providers=(*gpu, "CPUExecutionProvider")))
        name = ISNetTeacher.name
    else:
        from .detectron2_teacher import Detectron2Teacher

        factory = functools.partial(Detectron2Teacher.from_config, classes=classes)
        name = Detectron2Teacher.name
    if cfg.cache is not None:
        # The batch path (training.batch), on either engine: the teacher fills the label cache (by photo hash), then
        # masks come from the cache with no teacher call, so both engines write the same files.
        from .batch_jobs import label_with_engine

        from .batch_jobs import Remote

        filled, summary = label_with_engine(cfg, factory, name, _engine(args),
                                            Remote(photo_root=args.photo_root, cache_url=args.cache_url))
        print(f"teacher: {filled.ok} photos in {filled.seconds:.1f} s ({filled.per_second:.2f}/s) on {args.engine}, "
              f"{filled.skipped_done} already in the cache, {filled.failed} failed")
    elif args.engine == "ray":
        raise ValueError("--engine ray fills the label cache: drop --no-cache")
    else:
        summary = label_manifest(cfg, factory())
    print(f"labelled {summary.ok} ({summary.from_cache} from the label cache), already done {summary.skipped_done}, "
          f"rejected {summary.rejected}")
    if args.sheet:
        print(f"contact sheet: {contact_sheet(cfg, args.sheet)}")
    return 0


def _engine(args: argparse.Namespace) -> "EngineConfig":
    """The batch engine settings of a command's --engine/--workers/--address/--batch-size/--gpus."""
    from .batch import EngineConfig

    return EngineConfig(engine=args.engine, workers=args.workers, batch_size=args.batch_size, address=args.address,
                        gpus_per_worker=getattr(args, "gpus_per_worker", 0.0))


def _add_engine_args(p: argparse.ArgumentParser) -> None:
    """--engine and the Ray options (training.batch)."""
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local: this process, no Ray; ray: a pool of Ray actors (local Ray, or --address)")
    p.add_argument("--workers", type=int, default=1, help="Ray actors, each with its own session")
    p.add_argument("--batch-size", type=int, default=8, help="photos per actor call")
    p.add_argument("--address", default=None, help="Ray cluster address ('auto' on a head node, ray://host:10001)")


def _cmd_cutouts(args: argparse.Namespace) -> int:
    """Catalogue cut-outs of a manifest, folder or S3 prefix into the web app's cache layout."""
    from .batch_jobs import ServingSettings, make_cutouts

    settings = ServingSettings(threshold=args.threshold, min_area=args.min_area,
                               refine_max_side=args.refine_max_side)
    summary = make_cutouts(args.source, args.out, str(args.model_dir), _engine(args), settings)
    print(f"cut-outs: {summary.ok} made in {summary.seconds:.1f} s ({summary.per_second:.2f}/s) on {args.engine}, "
          f"{summary.skipped_done} already there, {summary.failed} failed -> {args.out}")
    return 1 if summary.failed else 0


def _cmd_label_cache(args: argparse.Namespace) -> int:
    """Fill the label cache from a labels folder."""
    from .label_cache import LabelCache, fill_from_labels

    added, present = fill_from_labels(args.manifest, args.labels, LabelCache(args.cache, args.teacher))
    print(f"label cache {args.cache}: {added} added, {present} already there")
    return 0


def _cmd_review(args: argparse.Namespace) -> int:
    """Automatic checks on teacher labels: review.jsonl with a verdict per photo, contact sheets per reason."""
    from .review import ReviewConfig, review_labels

    cfg = ReviewConfig(top_run=args.top_run, part_min=args.part_min, part_ratio=args.part_ratio, min_fg=args.min_fg,
                       max_fg=args.max_fg, max_soft=args.max_soft)
    counts = review_labels(args.manifest, args.labels, args.out, cfg, manual=args.manual)
    total = sum(counts.values())
    for reason, n in counts.most_common():
        print(f"{reason:24s} {n:5d}  {n / total:6.1%}")
    print(f"review of {total} labels -> {args.out}/review.jsonl, contact sheets {args.out}/sheet_<reason>.png")
    return 0


def _cmd_review_sheets(args: argparse.Namespace) -> int:
    """Numbered sheets of dataset items for review by eye (decisions go into a manual review file)."""
    from .dataset import load_dataset_file
    from .review import SheetConfig, review_sheets

    index = review_sheets(load_dataset_file(args.dataset), args.out,
                          SheetConfig(split=tuple(args.split), kind=args.kind, background=tuple(args.background),
                                      klass=tuple(args.klass), source=tuple(args.source)))
    print(f"{len(index)} {args.kind} items on {args.out}/sheet_*.png; numbers -> ids in {args.out}/index.json")
    return 0


def _cmd_dataset(args: argparse.Namespace) -> int:
    """Build the model 2.0 dataset file: ikea as 1.x split it, the extra set by near-duplicate group, generated items."""
    from .dataset import SourceSpec, SplitConfig, build_combined_dataset

    classes = load_categories(args.categories).classes
    sources = [SourceSpec("ikea", args.manifest, args.labels)]
    if args.extra_manifest is not None:
        sources.append(SourceSpec("extra", args.extra_manifest, args.extra_labels,
                                  review=args.extra_review if args.extra_review.is_file() else None,
                                  products_csv=args.extra_products))
        if not args.extra_review.is_file():
            log.warning("no review at %s: every ok extra label is used (run `python -m training review`)",
                        args.extra_review)
    items = build_combined_dataset(sources, args.out, classes,
                                   SplitConfig(max_distance=args.max_distance, hash_cache=args.hash_cache,
                                               generated=list(args.generated),
                                               generated_review=args.generated_review))
    from collections import Counter

    for key, n in sorted(Counter(f"{it.split:5s} {it.collection:5s} {it.kind:9s} {it.background or '-'}"
                                 for it in items).items()):
        print(f"{key:34s} {n:6d}")
    print(f"dataset file: {args.out}")
    return 0


def _cmd_composite(args: argparse.Namespace) -> int:
    """Composite train studio products into rooms and onto backdrops; write a sample sheet."""
    from .composite import CompositeConfig, make_composites, sample_sheet
    from .dataset import load_dataset_file

    items = make_composites(load_dataset_file(args.dataset), args.rooms,
                            CompositeConfig(out=args.out, count=args.count, seed=args.seed))
    print(f"{len(items)} composites -> {args.out}/items.json; sample sheet "
          f"{sample_sheet(items[:36], args.out / 'sample_sheet.png')}")
    return 0


def _cmd_negatives(args: argparse.Namespace) -> int:
    """Generate the no-product set (train / val / held-out test); write a sample sheet."""
    from .composite import DEFAULT_PER_KIND, NegativeConfig, make_negatives, sample_sheet

    per_kind = {k: max(1, round(v * args.scale)) for k, v in DEFAULT_PER_KIND.items()}
    items = make_negatives(args.rooms, NegativeConfig(out=args.out, per_kind=per_kind, seed=args.seed))
    step = max(1, len(items) // 36)
    print(f"{len(items)} negatives -> {args.out}/items.json; sample sheet "
          f"{sample_sheet(items[::step][:36], args.out / 'sample_sheet.png')}")
    return 0


def _cmd_scene_negatives(args: argparse.Namespace) -> int:
    """No-product crops beside the product in other shops' room photos (train / val), plus train room views."""
    from .composite import SceneNegativeConfig, make_scene_negatives, sample_sheet
    from .dataset import load_dataset_file

    cfg = SceneNegativeConfig(out=args.out, count=args.count, room_views=args.room_views, seed=args.seed,
                              min_side=args.min_side)
    items = make_scene_negatives(load_dataset_file(args.dataset), args.rooms, cfg)
    step = max(1, len(items) // 36)
    print(f"{len(items)} scene negatives -> {args.out}/items.json; sample sheet "
          f"{sample_sheet(items[::step][:36], args.out / 'sample_sheet.png')}")
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    """Choose model.json's `decision` on the validation split (products and negatives) and save it in the run."""
    from .calibrate import choose_decision, collect_evidence, write_decision
    from .export import load_run_model

    classes = _classes(args)
    items = _items(args, classes)
    model, run_cfg = load_run_model(args.run_dir)
    size = run_cfg["input_size"]
    products = [it for it in items if it.split == "val" and it.kind == "photo"]
    negatives = [it for it in items if it.split == "val" and it.kind == "negative"]
    if not negatives:
        raise ValueError("the dataset file has no validation negatives (python -m training negatives, then dataset "
                         "--generated data/negatives/items.json)")
    # Products include unclassed ones (dinnerware, 1.x's unclassed photos): they count for "is there a product" only.
    decision, report = choose_decision(collect_evidence(model, size, products, classes),
                                       collect_evidence(model, size, negatives, classes),
                                       max_fpr=args.max_fpr, min_precision=args.min_precision)
    path = write_decision(args.run_dir, decision, report)
    print(f"decision {decision.as_dict()}: val product recall {report['val_product_recall']:.3f}, false positives "
          f"{report['val_false_positive_rate']:.3f}, labelled {report['val_label_coverage']:.3f} of the classed "
          f"products at precision {report['val_label_precision']:.3f} -> {path} (export writes it into model.json)")
    return 0


def _classes(args: argparse.Namespace) -> tuple[str, ...]:
    """The model's classes: categories.yaml's list, plus `other` (unclassed products as generic foreground)."""
    classes = load_categories(args.categories).classes
    return classes + ("other",) if args.other and "other" not in classes else classes


def _items(args: argparse.Namespace, classes: tuple[str, ...]):
    """The dataset file's items, building the file first if it is missing or --rebuild-dataset was given."""
    from .dataset import build_dataset_file, load_dataset_file

    if args.rebuild_dataset or not args.dataset.exists():
        base = tuple(c for c in classes if c != "other")
        return build_dataset_file(args.manifest, args.labels, args.dataset, base)
    return load_dataset_file(args.dataset)


def _encoder_weights(arg: str) -> str | None:
    """--encoder-weights as build_model takes it: a path that exists, "imagenet", or None for "none"."""
    if arg not in ("imagenet", "none") and not Path(arg).is_file():
        raise FileNotFoundError(f"encoder weights not found: {arg} (pass --encoder-weights imagenet|none|PATH)")
    return None if arg == "none" else str(arg)


def _train_config(args: argparse.Namespace, classes: tuple[str, ...]):
    """TrainConfig from the shared training arguments."""
    from .train import TrainConfig

    return TrainConfig(run_dir=args.run_dir, classes=classes, input_size=args.input_size, decoder=args.decoder,
                       alpha=args.alpha, width=args.width, class_pool=args.class_pool,
                       encoder_weights=_encoder_weights(args.encoder_weights),
                       batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr,
                       finetune_lr=args.finetune_lr, unfreeze_from=args.unfreeze_from, epochs_frozen=args.epochs_frozen,
                       epochs_finetune=args.epochs_finetune, patience=args.patience, dice_weight=args.dice_weight,
                       class_weight_power=args.class_weight_power, image_class_weight=args.image_class_weight,
                       soft_fg_weight=args.soft_fg_weight, ema_momentum=args.ema_momentum,
                       repeat_classed=args.repeat_classed, max_train_other=args.max_train_other,
                       unclassed_fg=args.unclassed_fg, train_on_val=args.train_on_val, seed=args.seed,
                       profile=args.profile, cache_dir=args.cache_dir, verbose=args.keras_verbose)


def _cmd_train(args: argparse.Namespace) -> int:
    """Train one model (resumable)."""
    from .train import train

    classes = _classes(args)
    result = train(_train_config(args, classes), _items(args, classes))
    print(f"best val mean IoU {result.best_val_mean_iou:.4f}, fg IoU {result.best_val_fg_iou:.4f}, "
          f"{result.epochs} epochs, {result.seconds:.0f} s -> {result.weights}")
    return 0


def _cmd_tune(args: argparse.Namespace) -> int:
    """Run the hyper-parameter sweep on the validation split."""
    from .tune import DEFAULT_SPACE, run_sweep

    classes = _classes(args)
    space = dict(DEFAULT_SPACE)
    for key in ("optimizer", "lr", "alpha", "input_size", "decoder"):
        values = getattr(args, f"sweep_{key}")
        if values:
            space[key] = values
    rows = run_sweep(_train_config(args, classes), _items(args, classes), args.run_dir, space, args.trials)
    for row in sorted(rows, key=lambda r: -r["val_mean_iou"]):
        print(f"{row['val_mean_iou']:.4f}  {row['val_fg_iou']:.4f}  {row['trial']}")
    return 0


def _interval(bounds: list[float]) -> str:
    """A bootstrap interval for printing."""
    return f"{bounds[0]:.3f}..{bounds[1]:.3f}"


def _cmd_evaluate(args: argparse.Namespace) -> int:
    """Score the models on the test split and write metrics.json + plots."""
    from .evaluate import EvalConfig, ModelUnderTest, evaluate, headline
    from .export import update_model_json_metrics

    classes = _classes(args)
    models = [ModelUnderTest("fast", args.run_dir, args.export_dir)]
    if args.baseline_run and (args.baseline_run / "best.weights.h5").exists():
        models.append(ModelUnderTest("pix2pix", args.baseline_run, args.baseline_export_dir))
    else:
        log.warning("no pix2pix baseline run at %s: evaluating the fast model only", args.baseline_run)
    metrics = evaluate(EvalConfig(models=models, out_dir=args.out, teacher_model=args.isnet_model,
                                  threads=args.threads, refine=_refine(args)), _items(args, classes), classes)
    for name, m in metrics["models"].items():
        c = m["classed"]
        print(f"{name}: test mean IoU {c['mean_iou']:.4f} (95% CI {_interval(c['mean_iou_ci95'])}; dominant-label "
              f"{c['mean_iou_dominant']:.4f}), fg IoU {c['foreground_iou']:.4f} "
              f"(95% CI {_interval(c['foreground_iou_ci95'])}), category acc {c['category_accuracy']:.3f}")
        print(f"{name}: test fg IoU over all {m['products']['images']} product photos "
              f"{m['products']['foreground_iou']:.4f} (95% CI {_interval(m['products']['foreground_iou_ci95'])})")
        if "refined" in m:
            r = m["refined"]
            print(f"{name}, refined as served: mean IoU {r['classed']['mean_iou']:.4f} "
                  f"(95% CI {_interval(r['classed']['mean_iou_ci95'])}), fg IoU {r['classed']['foreground_iou']:.4f} "
                  f"(95% CI {_interval(r['classed']['foreground_iou_ci95'])}), all product photos "
                  f"{r['products']['foreground_iou']:.4f} (95% CI {_interval(r['products']['foreground_iou_ci95'])})")
    for key in ("comparison", "comparison_refined"):
        if key in metrics:
            cmp = metrics[key]
            print(f"{cmp['a']} - {cmp['b']} ({key}) on the same photos, 95% CI: mean IoU "
                  f"{_interval(cmp['mean_iou_diff_ci95'])}, fg IoU {_interval(cmp['foreground_iou_diff_ci95'])}, "
                  f"fg IoU over all product photos {_interval(cmp['foreground_iou_products_diff_ci95'])}")
    for name, gain in metrics.get("refine_gain", {}).items():
        print(f"{name}: refined - plain, 95% CI: fg IoU {_interval(gain['foreground_iou_diff_ci95'])}, all product "
              f"photos {_interval(gain['foreground_iou_products_diff_ci95'])}")
    for name, m in metrics["models"].items():
        for protocol, groups in m.get("cross_shop", {}).items():
            for group, g in groups.items():
                acc = (f", category acc {g['category_accuracy']:.3f} (95% CI {_interval(g['category_accuracy_ci95'])})"
                       if "category_accuracy_ci95" in g else "")
                print(f"{name} cross-shop {group} ({protocol}, {g['images']} photos): fg IoU {g['foreground_iou']:.4f} "
                      f"(95% CI {_interval(g['foreground_iou_ci95'])}){acc}")
        for rule, neg in m.get("negatives", {}).items():
            if isinstance(neg, dict) and "false_positive_rate" in neg:
                print(f"{name} negative set ({rule}): {neg['with_product']}/{neg['images']} get a product, "
                      f"{neg['false_positive_rate']:.3f} (95% CI {_interval(neg['false_positive_rate_ci95'])})")
    if args.model_json.exists():
        update_model_json_metrics(args.model_json, headline(metrics, "fast"))
        print(f"metrics written into {args.model_json}")
    return 0


def _cmd_served_eval(args: argparse.Namespace) -> int:
    """Score each models folder through the served path; print a table and write JSON."""
    from .dataset import load_dataset_file
    from .io import atomic_write_json
    from .served_eval import served_evaluation

    items = load_dataset_file(args.dataset)
    results = [served_evaluation(d, items) for d in args.model_dir]
    for r in results:
        name = f"{r['model']['name']} {r['model']['version']}"
        rows = [("ikea (classed)", r["ikea"]), ("ikea (all products)", r["ikea_products"])]
        rows += [(f"cross-shop {k}", v) for k, v in r["cross_shop"].items()]
        rows.append(("category, ikea + cross-shop", r["category_both"]))
        for label, g in rows:
            acc = (f", category acc {g['category_accuracy']:.3f} ({_interval(g['category_accuracy_ci95'])}), "
                   f"labelled {g['labelled_share']:.2f}" if g.get("category_accuracy_ci95") else "")
            print(f"{name} {label} ({g['images']} photos): fg IoU {g['foreground_iou']:.4f} "
                  f"({_interval(g['foreground_iou_ci95'])}){acc}, no product {g['no_product']}")
        neg = r["negatives"]
        if neg["images"]:
            print(f"{name} negatives: {neg['with_product']}/{neg['images']} get a product "
                  f"({neg['false_positive_rate']:.3f}, {_interval(neg['false_positive_rate_ci95'])})")
    atomic_write_json(args.out, {"dataset": str(args.dataset), "results": results})
    print(f"written {args.out}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    """Export a run to every format; ship it unless --no-ship."""
    from .evaluate import headline, read_metrics
    from .export import ExportConfig, export_run

    metrics = None
    if not args.no_ship and args.metrics.exists():
        evaluated = read_metrics(args.metrics)
        weights = args.run_dir / "best.weights.h5"
        fresh = weights.exists() and args.metrics.stat().st_mtime > weights.stat().st_mtime
        if evaluated["models"].get("fast", {}).get("run_dir") == str(args.run_dir) and fresh:
            metrics = headline(evaluated, "fast")
        else:  # never ship numbers measured on other weights; `evaluate` fills them in
            log.warning("%s is not from the current weights of %s: model.json gets no metrics yet", args.metrics,
                        args.run_dir)
    photos = []
    if args.dataset.exists():  # check TFLite against Keras on real validation photos
        from .dataset import load_dataset_file

        photos = [it.image for it in load_dataset_file(args.dataset) if it.split == "val"]
    cfg = ExportConfig(run_dir=args.run_dir, work_dir=args.work_dir, ship_dir=None if args.no_ship else args.ship_dir,
                       version=args.version, check_photos=photos, refine=_refine(args))
    result = export_run(cfg, metrics=metrics)
    for key, f in result["files"].items():
        print(f"{key:12s} {f['bytes'] / 1e6:7.2f} MB  {f['path']}")
    print(f"TFLite vs Keras: {result['checks']}")
    return 0


def _cmd_probe(args: argparse.Namespace) -> int:
    """Cross-validate a linear classifier on frozen encoder features (train + val photos) and print the table."""
    from .io import atomic_write_json
    from .probe import ProbeConfig, resolution_ceiling, run_probe

    classes = _classes(args)
    cfg = ProbeConfig(encoder_weights=_encoder_weights(args.encoder_weights), input_size=args.input_size,
                      taps=tuple(args.tap), folds=args.folds, repeats=args.repeats, steps=args.steps, seed=args.seed)
    items = _items(args, classes)
    result = run_probe(cfg, items, classes)
    print(f"linear probe, {result['photos']} classed train+val photos, {cfg.input_size}×{cfg.input_size}, "
          f"{cfg.repeats}× {cfg.folds}-fold:")
    for tap, r in result["taps"].items():
        print(f"  {tap:24s} accuracy {r['accuracy']:.3f}  balanced accuracy {r['balanced_accuracy']:.3f}")
    if args.ceiling_sizes:
        val = [it for it in items if it.split == "val" and it.klass in classes[1:]]
        ceiling = resolution_ceiling(val, args.ceiling_sizes)
        result["resolution_ceiling"] = {"photos": len(val), "foreground_iou": ceiling}
        print(f"foreground IoU of the teacher's own mask through s×s, {len(val)} classed val photos:")
        for size, iou in ceiling.items():
            print(f"  {size}×{size}: {iou:.4f}")
    if args.out:
        atomic_write_json(args.out, result)
        print(f"confusion matrices: {args.out}")
    return 0


def _add_data_args(p: argparse.ArgumentParser) -> None:
    """Arguments naming the data a command reads."""
    p.add_argument("--manifest", type=Path, default=Path("data/ikea/manifest.jsonl"))
    p.add_argument("--labels", type=Path, default=Path("data/labels"))
    p.add_argument("--dataset", type=Path, default=Path("data/labels/dataset.json"),
                   help="split file (built from the labels if missing)")
    p.add_argument("--rebuild-dataset", action="store_true", help="rebuild the split file from the current labels")
    p.add_argument("--categories", type=Path, default=DEFAULT_CATEGORIES)
    p.add_argument("--other", action=argparse.BooleanOptionalAction, default=False,
                   help="learn unclassed products as an 'other' class (default off: on validation it raised "
                        "foreground IoU but lowered class IoU, see README 'Model')")


def _add_refine_args(p: argparse.ArgumentParser) -> None:
    """The served mask refinement (webapp.refine): evaluate scores it, export writes it into model.json."""
    from core.refine import GuidedFilter

    default = GuidedFilter()
    p.add_argument("--refine-radius", type=int, default=default.radius,
                   help="guided-filter window radius in model pixels (0: no refinement; default chosen on validation)")
    p.add_argument("--refine-eps", type=float, default=default.eps, help="guided-filter regulariser")
    p.add_argument("--refine-subsample", type=int, default=default.subsample,
                   help="fit the filter at the model output's resolution / N")
    p.add_argument("--refine-max-side", type=int, default=default.max_side,
                   help="apply it to the photo capped to this long side (px), then upsample")


def _refine(args: argparse.Namespace):
    """The GuidedFilter from the --refine-* arguments, or None when the radius is 0."""
    from core.refine import GuidedFilter

    if args.refine_radius == 0:
        return None
    return GuidedFilter(args.refine_radius, args.refine_eps, args.refine_subsample, args.refine_max_side)


def _add_train_args(p: argparse.ArgumentParser, run_dir: str) -> None:
    """Arguments of a training run (shared by train and tune)."""
    from .model import CLASS_POOLS

    _add_data_args(p)
    p.add_argument("--run-dir", type=Path, default=Path(run_dir))
    p.add_argument("--decoder", choices=["fast", "pix2pix"], default="fast")
    p.add_argument("--input-size", type=int, default=160)
    p.add_argument("--alpha", type=float, default=1.0)
    p.add_argument("--width", type=int, default=192,
                   help="fast decoder channels at stride 16 (192: the shipped model; 1.1.0 had 96)")
    p.add_argument("--class-pool", choices=list(CLASS_POOLS), default="global",
                   help="fast decoder: average the stride-32 class features over the photo or its predicted foreground, "
                        "or (multilevel) the stride-16 and stride-32 features over the photo")
    p.add_argument("--encoder-weights", default=str(ENCODER_WEIGHTS), help="PATH to the .h5, imagenet or none")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--optimizer", choices=["adam", "adamw", "sgd", "rmsprop"], default="adam")
    p.add_argument("--lr", type=float, default=3e-3, help="frozen-encoder phase (the sweep's best)")
    p.add_argument("--finetune-lr", type=float, default=3e-5)
    p.add_argument("--unfreeze-from", metavar="LAYER", default=None,
                   help="first MobileNetV2 layer trained when fine-tuning, e.g. block_13_expand (default: all)")
    p.add_argument("--epochs-frozen", type=int, default=24)
    p.add_argument("--epochs-finetune", type=int, default=0,
                   help="epochs with the encoder unfrozen after the frozen ones (0: the shipped recipe)")
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--dice-weight", type=float, default=1.0)
    p.add_argument("--class-weight-power", type=float, default=0.5,
                   help="pixel cross-entropy weights (median frequency / frequency) ** POWER (0: unweighted)")
    p.add_argument("--image-class-weight", type=float, default=0.0,
                   help="weight of the image-level class loss (every photo counts once, whatever its area)")
    p.add_argument("--soft-fg-weight", type=float, default=0.0,
                   help="weight of a binary cross-entropy against the teacher's soft alpha (distillation; 0: off)")
    p.add_argument("--ema-momentum", type=float, default=None,
                   help="keep an exponential moving average of the weights (e.g. 0.99) and validate/save it")
    p.add_argument("--repeat-classed", type=int, default=3, help="repeat classed train photos N times per epoch")
    p.add_argument("--max-train-other", type=int, default=None, help="use at most N unclassed train photos")
    p.add_argument("--unclassed-fg", action="store_true",
                   help="train also on unclassed photos as partial labels ('some foreground class'; needs --no-other)")
    p.add_argument("--train-on-val", action="store_true",
                   help="final fit: train on train+val for the full schedule and keep the last weights")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--profile", action="store_true", help="TF profiler on batches 2-4 (TensorBoard Profile tab)")
    p.add_argument("--cache-dir", type=Path, default=Path("runs/cache"))
    p.add_argument("--keras-verbose", type=int, default=1, choices=[0, 1, 2])


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
    p.add_argument("--cache", type=Path, default=Path("data/label-cache"),
                   help="committed label cache: teacher alphas by photo hash, read and extended (README 'Labels')")
    p.add_argument("--no-cache", action="store_true", help="always run the teacher; leave the cache alone")
    _add_engine_args(p)
    p.add_argument("--gpus-per-worker", type=float, default=0.0, help="Ray: GPUs per teacher actor (> 0: ISNet on CUDA, onnxruntime-gpu on those nodes)")
    p.add_argument("--photo-root", default=None,
                   help="cluster: where workers read the photos (the manifest's folder synced to e.g. s3://b/ikea)")
    p.add_argument("--cache-url", default=None,
                   help="cluster: the label cache the workers fill (e.g. s3://b/label-cache), copied into --cache")
    p.set_defaults(func=_cmd_label)

    p = sub.add_parser("cutouts", help="catalogue cut-outs ahead of time, in the web app's CACHE_DIR layout "
                                       "(resumable; --engine ray for a Ray pool or cluster)")
    p.add_argument("--source", default="data/ikea/manifest.jsonl",
                   help="manifest.jsonl, a folder of photos or an s3:// prefix (local path or s3://)")
    p.add_argument("--out", default="instance/cache", help="output folder or s3:// prefix (the web app's CACHE_DIR)")
    p.add_argument("--model-dir", type=Path, default=Path("models"))
    # The web app's settings of the same names (webapp/config.py): cut-outs made otherwise are keyed otherwise.
    p.add_argument("--threshold", type=float, default=0.5, help="MASK_THRESHOLD")
    p.add_argument("--min-area", type=float, default=0.005, help="MIN_PRODUCT_AREA")
    p.add_argument("--refine-max-side", type=int, default=1024, help="REFINE_MAX_SIDE")
    _add_engine_args(p)
    p.set_defaults(func=_cmd_cutouts)

    p = sub.add_parser("label-cache", help="copy an existing labels folder's alphas into the label cache")
    for name, default in (("--manifest", "data/ikea/manifest.jsonl"), ("--labels", "data/labels"),
                          ("--cache", "data/label-cache")):
        p.add_argument(name, type=Path, default=Path(default))
    p.add_argument("--teacher", default="isnet", help="the teacher that made the labels")
    p.set_defaults(func=_cmd_label_cache)

    p = sub.add_parser("review", help="automatic checks on teacher labels -> review.jsonl + contact sheets per reason")
    p.add_argument("--manifest", type=Path, default=Path("data/extra/manifest.jsonl"))
    p.add_argument("--labels", type=Path, default=Path("data/labels_extra"))
    p.add_argument("--out", type=Path, default=Path("data/review_extra"))
    p.add_argument("--manual", type=Path, default=None,
                   help="decisions by eye (jsonl: id, status ok|rejected, reason) that override the checks")
    from .review import ReviewConfig

    d = ReviewConfig()
    p.add_argument("--top-run", type=float, default=d.top_run, help="max foreground run along the top edge (share "
                                                                     "of the width)")
    p.add_argument("--part-min", type=float, default=d.part_min, help="a large part: at least this share of the photo")
    p.add_argument("--part-ratio", type=float, default=d.part_ratio, help="...and this share of the largest part")
    p.add_argument("--min-fg", type=float, default=d.min_fg)
    p.add_argument("--max-fg", type=float, default=d.max_fg)
    p.add_argument("--max-soft", type=float, default=d.max_soft,
                   help="max share of the foreground with uncertain alpha (0.2..0.8)")
    p.set_defaults(func=_cmd_review)

    p = sub.add_parser("review-sheets", help="numbered sheets of dataset items (photo beside its reference cut-out, or "
                                             "a negative alone) for review by eye")
    p.add_argument("--dataset", type=Path, default=Path("data/dataset_v2.json"))
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--kind", choices=("photo", "negative"), default="photo")
    p.add_argument("--split", nargs="*", default=[], help="train / val / test (default: all)")
    p.add_argument("--background", nargs="*", default=[], help="scene / plain / white (default: all)")
    p.add_argument("--klass", nargs="*", default=[], help="classes (default: all)")
    p.add_argument("--source", nargs="*", default=[], help="sources, e.g. flipkart, or room / wall for negatives")
    p.set_defaults(func=_cmd_review_sheets)

    p = sub.add_parser("dataset", help="model 2.0 dataset file: ikea (1.x split) + extra (split by near-duplicate "
                                       "group, reviewed) + composites/negatives")
    p.add_argument("--manifest", type=Path, default=Path("data/ikea/manifest.jsonl"))
    p.add_argument("--labels", type=Path, default=Path("data/labels"))
    p.add_argument("--extra-manifest", type=Path, default=None)
    p.add_argument("--extra-labels", type=Path, default=Path("data/labels_extra"))
    p.add_argument("--extra-review", type=Path, default=Path("data/review_extra/review.jsonl"))
    p.add_argument("--extra-products", type=Path, default=Path("../shared/data/extra/products.csv"),
                   help="the extra set's products.csv: source and background (scene/plain/white) by id")
    p.add_argument("--generated", type=Path, nargs="*", default=[],
                   help="items files written by `composite` / `negatives`")
    p.add_argument("--generated-review", type=Path, default=None,
                   help="decisions by eye on generated items (JSON lines: id, status, reason); rejected ones are "
                        "left out, e.g. room negatives that show one main product")
    p.add_argument("--max-distance", type=int, default=4,
                   help="photos are one group when pHash and dHash both differ in at most N bits")
    p.add_argument("--hash-cache", type=Path, default=Path("data/phash.json"))
    p.add_argument("--categories", type=Path, default=DEFAULT_CATEGORIES)
    p.add_argument("--out", type=Path, default=Path("data/dataset_v2.json"))
    p.set_defaults(func=_cmd_dataset)

    p = sub.add_parser("composite", help="paste train studio products into room photos and onto backdrops (offline)")
    p.add_argument("--dataset", type=Path, default=Path("data/dataset_v2.json"),
                   help="dataset file whose train studio photos are pasted (build it first without --generated)")
    p.add_argument("--rooms", type=Path, default=Path("../shared/data/ikea/rooms"))
    p.add_argument("--out", type=Path, default=Path("data/composite"))
    p.add_argument("--count", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_composite)

    p = sub.add_parser("negatives", help="no-product images (noise, blank, gradients, textures, walls, text, rooms)")
    p.add_argument("--rooms", type=Path, default=Path("../shared/data/ikea/rooms"))
    p.add_argument("--out", type=Path, default=Path("data/negatives"))
    p.add_argument("--scale", type=float, default=1.0, help="multiply the default count per kind (540 train)")
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(func=_cmd_negatives)

    p = sub.add_parser("scene-negatives", help="no-product crops of room photos beside their product (train / val)")
    p.add_argument("--dataset", type=Path, default=Path("data/dataset_v2_base.json"),
                   help="dataset file whose labelled scene photos are cropped (build it first without --generated)")
    p.add_argument("--rooms", type=Path, default=Path("../shared/data/ikea/rooms"))
    from .composite import SceneNegativeConfig

    d = SceneNegativeConfig(out=Path("data/negatives_scene"))
    p.add_argument("--out", type=Path, default=d.out)
    p.add_argument("--count", type=int, default=d.count, help="train crops (val gets a fifth as many)")
    p.add_argument("--room-views", type=int, default=d.room_views, help="random crops/flips of whole train room photos")
    p.add_argument("--min-side", type=float, default=d.min_side, help="a crop spans at least this share of the "
                                                                      "photo's width and height")
    p.add_argument("--seed", type=int, default=d.seed)
    p.set_defaults(func=_cmd_scene_negatives)

    p = sub.add_parser("train", help="train the segmentation model (frozen encoder, then fine-tuning; resumable)")
    _add_train_args(p, "runs/train_fast")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("tune", help="hyper-parameter sweep on the validation split (HParams + CSV)")
    _add_train_args(p, "runs/tune")
    p.set_defaults(epochs_frozen=3, epochs_finetune=3, max_train_other=300, keras_verbose=2, lr=1e-3, other=True)
    p.add_argument("--trials", type=int, default=None, help="random sample of N trials from the grid")
    p.add_argument("--sweep-optimizer", nargs="+", choices=["adam", "adamw", "sgd", "rmsprop"])
    p.add_argument("--sweep-lr", nargs="+", type=float)
    p.add_argument("--sweep-alpha", nargs="+", type=float)
    p.add_argument("--sweep-input-size", nargs="+", type=int)
    p.add_argument("--sweep-decoder", nargs="+", choices=["fast", "pix2pix"])
    p.set_defaults(func=_cmd_tune)

    p = sub.add_parser("evaluate", help="test-split metrics at full resolution, sizes, latency, plots")
    _add_data_args(p)
    p.add_argument("--run-dir", type=Path, default=Path("runs/train_fast"))
    p.add_argument("--export-dir", type=Path, default=Path("models/_work/fast"))
    p.add_argument("--baseline-run", type=Path, default=Path("runs/train_pix2pix"))
    p.add_argument("--baseline-export-dir", type=Path, default=Path("models/_work/pix2pix"))
    p.add_argument("--isnet-model", type=Path, default=SHARED_MODELS / "isnet_small.onnx")
    p.add_argument("--threads", type=int, default=1, help="ai-edge-litert threads for latency")
    p.add_argument("--out", type=Path, default=Path("models/eval"))
    p.add_argument("--model-json", type=Path, default=Path("models/model.json"))
    _add_refine_args(p)
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("calibrate", help="choose model.json's 'decision' (no product / uncertain class) on val")
    _add_data_args(p)
    p.add_argument("--run-dir", type=Path, default=Path("runs/train_fast"))
    p.add_argument("--max-fpr", type=float, default=0.03,
                   help="largest share of validation negatives allowed a product (the issue's goal is 5%% on test)")
    p.add_argument("--min-precision", type=float, default=0.95,
                   help="the class is named only above the score at which it is right this often on val")
    p.set_defaults(func=_cmd_calibrate)

    p = sub.add_parser("served-eval", help="score models folders exactly as /predict serves them (TFLite, "
                                           "refinement, decision) on a dataset's test split")
    p.add_argument("--dataset", type=Path, default=Path("data/dataset_v2.json"))
    p.add_argument("--model-dir", type=Path, nargs="+", default=[Path("models")])
    p.add_argument("--out", type=Path, default=Path("models/eval/served.json"))
    p.set_defaults(func=_cmd_served_eval)

    p = sub.add_parser("export", help="export a run (.keras, .h5, SavedModel, TFLite fp32/fp16) and ship it")
    p.add_argument("--run-dir", type=Path, default=Path("runs/train_fast"))
    p.add_argument("--work-dir", type=Path, default=Path("models/_work/fast"))
    p.add_argument("--ship-dir", type=Path, default=Path("models"))
    p.add_argument("--no-ship", action="store_true", help="only write the formats to --work-dir")
    p.add_argument("--metrics", type=Path, default=Path("models/eval/metrics.json"))
    p.add_argument("--dataset", type=Path, default=Path("data/labels/dataset.json"),
                   help="validation photos from here are used for the TFLite vs Keras check")
    p.add_argument("--version", default="1.0.0")
    _add_refine_args(p)
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("probe", help="linear probe: cross-validated class accuracy of frozen encoder features "
                                     "(train + val photos; the ceiling of the fast model's class head)")
    _add_data_args(p)
    p.add_argument("--encoder-weights", default=str(ENCODER_WEIGHTS), help="PATH to the .h5, imagenet or none")
    p.add_argument("--input-size", type=int, default=160)
    p.add_argument("--tap", nargs="+", default=["block_16_expand_relu"],
                   help="MobileNetV2 layers whose global average is probed (default: the fast model's class tap)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, default=1500, help="Adam steps (batch 64) per fit")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ceiling-sizes", type=int, nargs="*", default=[80, 112, 160, 224],
                   help="also report the foreground IoU ceiling of a mask predicted at these sizes (none: skip)")
    p.add_argument("--out", type=Path, default=Path("runs/probe.json"), help="write the confusion matrices here")
    p.set_defaults(func=_cmd_probe)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the training command line."""
    return run_cli(build_parser(), argv, (CategoriesError, FileNotFoundError, ValueError))
