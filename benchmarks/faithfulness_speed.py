"""`archlab faithfulness cnn --images N`: where the time goes, and ROAD against zero fill.

Needs a trained cnn (`archlab train cnn`). In one process, side by side: the five methods'
maps and the three controls, the deletion curves with the zero fill, the same curves with
ROAD, and Captum's metrics with the sanity ρ on the detail images. Prints seconds per part
and the ratio ROAD / zero. Targets (issue 20): the zero-fill table ≤ 2 min on 2 cores for
500 images; ROAD within 2× of it.

    OMP_NUM_THREADS=2 python benchmarks/faithfulness_speed.py --images 500 [--runs runs]
"""

from __future__ import annotations

import argparse
import time

import torch

import archlab
from archlab.analysis import faithfulness as FA
from archlab.analysis._attribution import _prepared, check_methods
from archlab.training.predict import to_input


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs", help="trained runs (default: runs)")
    parser.add_argument("--model", default="cnn", help="the run (default: cnn)")
    parser.add_argument("--images", type=int, default=500, help="test images (default: 500)")
    args = parser.parse_args()
    run = archlab.load_run(args.model, runs=args.runs)
    data = archlab.load_fashion_mnist()
    chosen = FA.stratified_indices(data.test_labels, args.images)
    x = to_input(data.test_images[chosen], run.normalize)
    black = float(to_input(torch.zeros(1, 1, 1, dtype=torch.uint8), run.normalize).item())
    g = torch.Generator().manual_seed(0)
    seconds: dict[str, float] = {}
    with _prepared(run.model) as model:
        with torch.no_grad():
            targets = model(x).argmax(1)
        maps = {}
        for method in check_methods("all"):
            start = time.perf_counter()
            result = FA._maps_in_chunks(model, x, targets, method, black, None)
            seconds[f"maps: {method}"] = time.perf_counter() - start
            if not isinstance(result, str):
                maps[method] = result.map
        for control in FA.CONTROLS:
            maps[control] = FA.control_maps(control, x, g)
        for fill in ("zero", "road"):
            start = time.perf_counter()
            for m in maps.values():
                FA._score(model, x, targets, m, fill, black, FA.STEP, g)
            seconds[f"curves, {fill} fill ({len(maps)} maps)"] = time.perf_counter() - start
    start = time.perf_counter()
    FA.faithfulness_of_model(
        run.model, data.test_images[chosen[: FA.DETAIL_IMAGES]], normalize=run.normalize
    )
    seconds[f"whole table on the {FA.DETAIL_IMAGES} detail images (metrics + ρ)"] = (
        time.perf_counter() - start
    )
    for part, s in seconds.items():
        print(f"{part:55s} {s:7.1f} s")
    maps_s = sum(s for k, s in seconds.items() if k.startswith("maps"))
    zero = maps_s + seconds[f"curves, zero fill ({len(maps)} maps)"]
    road = maps_s + seconds[f"curves, road fill ({len(maps)} maps)"]
    print(f"\nzero-fill table without the detail metrics: {zero:.1f} s; ROAD: {road:.1f} s")
    print(f"ratio ROAD / zero: {road / zero:.2f}")


if __name__ == "__main__":
    main()
