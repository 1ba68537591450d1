"""The explorer's live panel (issue 30): stroke → every panel redrawn, and the site's weight.

In headless Chromium (Debian's chromium and chromium-driver, offline, docs/check_site.py's
flags), the page written by `archlab explore` draws 50 strokes on the live canvas, one at a
time, for each run; a stroke's time runs from the drawing's change to the next animation
frame after the model's answer, the probabilities and the selected row's channels were
redrawn (the occlusion map may lag: it is not waited for). Printed: the median and the
90th percentile of the 50, per run; targets ≤ 50 ms for cnn and ≤ 100 ms for resnet on 2
CPU cores. Then the folder of `archlab explore dnn cnn` in MB (target ≤ 25 MB), with what
the runtime (vendor/) and each run's graph (data/run-K/model.js) cost.

Needs the runs trained (`archlab train dnn cnn resnet`; pass --runs for another folder). A
run that is missing is trained for 20 iterations into a temporary folder instead (its
weights do not change the time) and the output says so.

    python benchmarks/explorer_live.py [--runs runs] [--strokes 50]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import tempfile
from pathlib import Path

ROOT = Path(__file__).parents[1]

# one stroke: a short line of ink at a new place, then wait for the answer and a frame
_STROKE = """
const [k, done] = arguments;
const before = Number(document.body.dataset.live || 0);
const px = Float32Array.from(ArchlabLive.live.pixels);
const y = 4 + (k * 7) % 20, x0 = 4 + (k * 3) % 16;
for (let x = x0; x < x0 + 8; x++) px[y * 28 + x] = px[y * 28 + x] > 0.5 ? 0 : 1;
const t0 = performance.now();
ArchlabLive.set(px);
const wait = () => Number(document.body.dataset.live || 0) > before
  ? requestAnimationFrame(() => done(performance.now() - t0)) : setTimeout(wait, 1);
wait();
"""
_READY = """
const done = arguments[0];
const t = () => Number(document.body.dataset.live || 0) > 0 ? done() : setTimeout(t, 20);
t();
"""


def folder_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6


def load_runs(names: list[str], runs: str, tmp: Path) -> list:
    import archlab
    from archlab.training.run import as_runs

    loaded = []
    for name in names:
        if (Path(runs) / name).is_dir():
            loaded += as_runs([name], runs)
        else:
            print(f"note: no run {runs}/{name}: trained for 20 iterations instead (timing only)")
            loaded.append(
                archlab.train(
                    name,
                    runs=tmp / "runs",
                    max_iterations=20,
                    progress=False,
                    log=lambda _line: None,
                    figures=False,
                )
            )
    return loaded


def stroke_times(page: Path, keys: list[str], names: list[str], strokes: int) -> None:
    spec = importlib.util.spec_from_file_location("check_site", ROOT / "docs" / "check_site.py")
    check_site = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check_site)
    with tempfile.TemporaryDirectory() as profile:
        driver = check_site._driver(profile)
        try:
            driver.set_window_size(1280, 720)
            driver.set_script_timeout(120)
            driver.get(page.as_uri())
            driver.execute_async_script(_READY)
            for key, name in zip(keys, names, strict=True):
                driver.execute_script("ARCHLAB.select({run: arguments[0], row: 1})", key)
                driver.execute_async_script(_STROKE, -1)  # its session and first run: not timed
                times = sorted(driver.execute_async_script(_STROKE, k) for k in range(strokes))
                p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
                print(f"  {name:<10} stroke → redrawn: median {statistics.median(times):6.1f} ms, "
                      f"90th percentile {p90:6.1f} ms ({strokes} strokes)")  # fmt: skip
            errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
            if errors:
                print("  console errors:", *errors, sep="\n    ")
        finally:
            driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs", help="trained checkpoints (default: runs)")
    parser.add_argument("--strokes", type=int, default=50, help="strokes per run (default: 50)")
    args = parser.parse_args()

    import archlab

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        names = ["cnn", "resnet"]
        page = archlab.explore(load_runs(names, args.runs, tmp), images=30, out=tmp / "speed")
        print("live panel, headless Chromium")
        stroke_times(page, ["run-0", "run-1"], names, args.strokes)

        site = archlab.explore(load_runs(["dnn", "cnn"], args.runs, tmp), images=30,
                               out=tmp / "weight").parent  # fmt: skip
        print(f"archlab explore dnn cnn --images 30: {folder_mb(site):.1f} MB")
        print(f"  runtime (vendor/, onnxruntime-web 1.18.0): {folder_mb(site / 'vendor'):.1f} MB")
        for k, name in enumerate(["dnn", "cnn"]):
            graph = site / "data" / f"run-{k}" / "model.js"
            print(f"  {name} graph (data/run-{k}/model.js): {graph.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
