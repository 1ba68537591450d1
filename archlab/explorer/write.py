"""Lay the explorer's data out as files beside the static page.

The page is opened from ``file://``, where a browser refuses ``fetch`` of a JSON file, so
the data comes as scripts that hand a JSON object to the page (``ARCHLAB.add(...)``), and
the pictures as PNG sprites drawn into canvases. Sprites are palette PNGs (one byte a
pixel, the colour map in the palette), which compress several times better than RGB.

    index.html  explorer.js  explorer.css     copied from archlab/explorer/static
    data/index.js                              classes, images, the runs' names and totals
    data/images.png                            the test images, one 28×28 tile each
    data/run-K/run.js                          rows, ranges, bars, probabilities, confusion
    data/run-K/act-I.png  kern-I.png  attr-M.png
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from archlab.explorer.export import TILE_GAP, RunExport

STATIC = Path(__file__).parent / "static"
PAGE_FILES = ("index.html", "explorer.js", "explorer.css")
SPRITE_WIDTH = 2048  # pixels: wider sprites wrap a layer's channels onto more lines


def _palette(name: str) -> list[int]:
    from matplotlib import colormaps

    colours = (colormaps[name](torch.arange(256).numpy() / 255.0)[:, :3] * 255).round()
    return [int(v) for v in colours.flatten()]


_PALETTES: dict[str, list[int]] = {}


def save_png(pixels: torch.Tensor, path: Path, palette: str | None = None) -> None:
    """A uint8 ``(H, W)`` array as a grayscale or palette PNG."""
    from PIL import Image

    image = Image.fromarray(pixels.contiguous().numpy(), mode="L")
    if palette is not None:
        if palette not in _PALETTES:
            _PALETTES[palette] = _palette(palette)
        image.putpalette(_PALETTES[palette])  # an L image becomes P, its bytes the indices
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, optimize=False, compress_level=6)


def tile_grid(tiles: torch.Tensor, cols: int, fill: int = 0) -> torch.Tensor:
    """``(T, h, w)`` tiles on a grid ``cols`` wide with :data:`TILE_GAP` pixels of
    ``fill`` between them."""
    t, h, w = tiles.shape
    lines = -(-t // cols)
    size = (lines * (h + TILE_GAP), cols * (w + TILE_GAP))
    grid = torch.full(size, fill, dtype=torch.uint8)
    for k in range(t):
        r, c = divmod(k, cols)
        y, x = r * (h + TILE_GAP), c * (w + TILE_GAP)
        grid[y : y + h, x : x + w] = tiles[k]
    return grid


def _columns(count: int, width: int) -> int:
    return max(1, min(count, SPRITE_WIDTH // (width + TILE_GAP)))


def _round(values, digits: int = 4) -> list:
    return [float(f"{v:.{digits}g}") for v in values]


def write_run(export: RunExport, folder: Path, key: str) -> dict:
    """Write one run's sprites under ``folder`` and return its JSON object."""
    rows = []
    for i, (row, act) in enumerate(zip(export.rows, export.activations, strict=True)):
        entry = dict(row)
        entry["act"] = {"kind": act.kind, "shape": list(act.shape), "why": act.why}
        if act.kind != "none":
            entry["act"]["ranges"] = [_round(r, 7) for r in act.ranges]  # float32 exact
        if act.kind == "maps":
            n, c, _h, w = act.q.shape
            cols = _columns(c, w)
            sprite = torch.cat([tile_grid(act.q[k], cols) for k in range(n)])
            save_png(sprite, folder / f"act-{i}.png", "viridis")
            entry["act"].update(file=f"{key}/act-{i}.png", cols=cols, lines=-(-c // cols))
        elif act.kind == "bars":
            entry["act"]["bars"] = act.q.tolist()
        if i in export.kernels:
            q, m = export.kernels[i]
            out, inp, kh, kw = q.shape
            # one line per output channel, one column per input channel; a first layer's
            # single input channel wraps its kernels onto lines of 16 instead
            cols = inp if inp > 1 else min(out, 16)
            grid = tile_grid(q.reshape(out * inp, kh, kw), cols, fill=128)  # white gaps
            save_png(grid, folder / f"kern-{i}.png", "RdBu_r")
            entry["kernels"] = {
                "file": f"{key}/kern-{i}.png",
                "out": out,
                "in": inp,
                "k": [kh, kw],
                "cols": cols,
                "max": _round([m])[0],
            }
        rows.append(entry)
    methods = []
    for method in export.methods:
        q, scales = export.attributions[method["name"]]
        cmap = "RdBu_r" if method["signed"] else "magma"
        save_png(tile_grid(q, 1), folder / f"attr-{method['name']}.png", cmap)
        methods.append(
            {**method, "file": f"{key}/attr-{method['name']}.png", "scales": _round(scales, 3)}
        )
    return {
        **_facts(key, export),
        "normalize": list(export.normalize) if export.normalize else None,
        "rows": rows,
        "probs": [_round(p, 3) for p in export.probs.tolist()],
        "confusion": export.confusion,
        "cells": export.cells,
        "methods": methods,
        "skipped": export.skipped,
        "notes": export.notes,
    }


def _script(path: Path, payload: dict) -> None:
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"ARCHLAB.add({text});\n", encoding="utf-8")


def write_explorer(
    out: Path,
    exports: list[RunExport],
    images: torch.Tensor,
    labels: list[int],
    indices: list[int],
    classes: tuple[str, ...],
) -> Path:
    """The whole folder: page, data scripts and sprites. Returns ``out/index.html``."""
    out.mkdir(parents=True, exist_ok=True)
    data = out / "data"
    if data.exists():
        shutil.rmtree(data)
    for name in PAGE_FILES:
        shutil.copyfile(STATIC / name, out / name)
    save_png(tile_grid(images, len(images)), data / "images.png")
    runs = []
    for k, export in enumerate(exports):
        key = f"run-{k}"
        payload = write_run(export, data / key, key)
        _script(data / key / "run.js", payload)
        runs.append({**_facts(key, export), "rows": len(export.rows)})
    _script(
        data / "index.js",
        {
            "index": {
                "classes": list(classes),
                "images": [{"index": i, "label": y} for i, y in zip(indices, labels, strict=True)],
                "imageFile": "images.png",
                "size": list(images.shape[1:]),
                "gap": TILE_GAP,
                "runs": runs,
            }
        },
    )
    return out / "index.html"


def _facts(key: str, export) -> dict:
    """What the run switch and a run's own data both say of a run."""
    return {
        "key": key,
        "name": export.name,
        "label": export.label,
        "accuracy": export.accuracy,
        "params": export.params,
        "macs": export.macs,
    }
