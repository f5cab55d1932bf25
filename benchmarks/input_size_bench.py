"""What a higher input resolution or a wider decoder costs: the fast model's architecture at each input size × mask
decoder width, exported to fp16 TFLite like the shipped model, with MACs, file size and ai-edge-litert latency
(1 thread, interleaved rounds). Weights are untrained (size and speed do not depend on them); the quality side of the
trade-off is in docs/model-development.md. Run `python benchmarks/input_size_bench.py`."""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.model_bench import interleaved_latency  # noqa: E402
from training.export import to_tflite  # noqa: E402
from training.model import build_model, count_macs  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Print the trade-off table."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sizes", type=int, nargs="+", default=[160, 192, 224])
    p.add_argument("--widths", type=int, nargs="+", default=[192, 256])
    p.add_argument("--classes", type=int, default=9)
    p.add_argument("--rounds", type=int, default=100)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    rows, files = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            for width in args.widths:
                name = f"{size}×{size}, decoder {width}"
                model = build_model(size, args.classes, width=width, encoder_weights=None)
                saved = Path(tmp) / f"saved_{size}_{width}"
                model.export(str(saved), verbose=False)
                path = Path(tmp) / f"m_{size}_{width}_fp16.tflite"
                path.write_bytes(to_tflite(model, saved, fp16=True))
                files[name] = path
                rows[name] = {"MACs (G)": count_macs(model) / 1e9, "params (M)": model.count_params() / 1e6,
                              "fp16 TFLite (MB)": path.stat().st_size / 1e6}
        latency = interleaved_latency(files, threads=1, rounds=args.rounds)
    print("| model | MACs (G) | params (M) | fp16 TFLite (MB) | litert fp16 ms (1 thread) |")
    print("|---|---:|---:|---:|---:|")
    for name, r in rows.items():
        print(f"| {name} | {r['MACs (G)']:.3f} | {r['params (M)']:.2f} | {r['fp16 TFLite (MB)']:.2f} | "
              f"{latency[name]:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
