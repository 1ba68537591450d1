"""Lay the explorer's data out as files beside the static page.

The page is opened from ``file://``, where a browser refuses ``fetch`` of a JSON file, so
the data comes as scripts that hand a JSON object to the page (``ARCHLAB.add(...)``), and
the pictures as PNG sprites drawn into canvases. Sprites are palette PNGs (one byte a
pixel, the colour map in the palette), which compress several times better than RGB.

    index.html  explorer*.js  panel-*.js  explorer.css   from archlab/explorer/static
    data/index.js                  format, classes, images, the runs' names and totals
    data/images-S.png              the test images, 28×28 tiles on square-ish sheets
    data/run-K/run.js              format, rows, ranges, bars, probabilities, confusion
    data/run-K/act-I-S.png  kern-I.png  attr-M-S.png

The keys of both scripts are ``schema.json``'s, documented in ``docs/explorer.rst``; every
sprite's sheets are at most :data:`MAX_SPRITE_SIDE` pixels a side.
"""

from __future__ import annotations

import base64
import json
import math
import re
import shutil
from pathlib import Path

import torch

from archlab.explorer.export import TILE_GAP, RunExport
from archlab.explorer.onnx import write_live, write_runtime

STATIC = Path(__file__).parent / "static"
# the page: every file and folder of static/ (index.html, the core, explorer.js, each
# panel-*.js, the CSS), copied as they are
PAGE_FILES = tuple(sorted(p.name for p in STATIC.iterdir() if not p.name.startswith(".")))
FORMAT = "archlab-explorer/1"  # the data's format key: the page refuses any other
MAX_SPRITE_SIDE = 4096  # pixels: a sprite's tiles wrap onto more sheets beyond this


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


def sprite_layout(count: int, h: int, w: int, cap: int = MAX_SPRITE_SIDE) -> tuple[int, int]:
    """Columns and lines of a square-ish sheet of ``count`` tiles of ``h``×``w`` pixels
    (each with its gap), no side over ``cap`` pixels; tiles beyond ``cols × lines`` go on
    further sheets.

    Args:
        count: how many tiles.
        h: a tile's height in pixels, without the gap.
        w: a tile's width in pixels, without the gap.
        cap: the largest side of a sheet in pixels. Default: :data:`MAX_SPRITE_SIDE`.

    Returns:
        ``(cols, lines)`` of one sheet.
    """
    th, tw = h + TILE_GAP, w + TILE_GAP
    if th > cap or tw > cap:
        from archlab.errors import ArchlabError

        raise ArchlabError(f"a {h}×{w} tile does not fit a {cap}-pixel sprite", 1)
    cols = max(1, min(count, cap // tw, math.ceil(math.sqrt(count * th / tw))))
    lines = max(1, min(-(-count // cols), cap // th))
    return cols, lines


def save_sprite(tiles: torch.Tensor, folder: Path, stem: str, key: str, palette=None) -> dict:
    """``(T, h, w)`` uint8 tiles as square-ish sheets ``STEM-S.png`` (see
    :func:`sprite_layout`); returns the page's description of them: tile k is on sheet
    ``k // (cols·lines)``, at column ``k % cols`` and line ``(k // cols) % lines``."""
    count, h, w = tiles.shape
    cols, lines = sprite_layout(count, h, w)
    per = cols * lines
    files = []
    for s, start in enumerate(range(0, count, per)):
        name = f"{stem}-{s}.png"
        save_png(tile_grid(tiles[start : start + per], cols), folder / name, palette)
        files.append(f"{key}/{name}" if key else name)
    return {"files": files, "tile": [h, w], "cols": cols, "lines": lines}


def _round(values, digits: int = 4) -> list:
    return [float(f"{v:.{digits}g}") for v in values]


# a path to a file of the user's (``/home/ann/lab/net.py:Net``) is shown as its name only:
# a site is shared, and the folders it came from are nobody else's business
_FILE_PATH = re.compile(r"(?:[^\s:'\"()=,]*[/\\])+([^/\\\s:'\"()=,]+\.py)")


def public_text(text: str) -> str:
    """``text`` with every path to a ``.py`` file cut to the file's name."""
    return _FILE_PATH.sub(r"\1", text)


def write_run(
    export: RunExport, folder: Path, key: str, tests: dict[int, int] | None = None
) -> dict:
    """Write one run's sprites under ``folder`` and return its JSON object (``tests``:
    test index → its tile in ``index.tests``, for the panels)."""
    rows = []
    for i, (row, act) in enumerate(zip(export.rows, export.activations, strict=True)):
        entry = dict(row)
        entry["name"] = public_text(entry["name"])
        entry["act"] = {"kind": act.kind, "shape": list(act.shape)}
        if act.kind == "none":
            entry["act"]["why"] = act.why
        else:
            entry["act"]["ranges"] = [_round(r, 7) for r in act.ranges]  # float32 exact
        if act.kind == "maps":
            n, c, h, w = act.q.shape
            tiles = act.q.reshape(n * c, h, w)  # tile image·C + channel
            entry["act"]["sprite"] = save_sprite(tiles, folder, f"act-{i}", key, "viridis")
        elif act.kind == "bars":
            entry["act"]["bars"] = act.q.tolist()
        if i in export.kernels:
            q, m = export.kernels[i]
            out, inp, kh, kw = q.shape
            # one line per output channel, one column per input channel; a first layer's
            # single input channel wraps its kernels onto lines of 16 instead; at most
            # 64 × 64 kernels (export.MAX_KERNELS), under the sprite cap for k < 63
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
        sprite = save_sprite(q, folder, f"attr-{method['name']}", key, cmap)
        methods.append({**method, "sprite": sprite, "scales": _round(scales, 3)})
    extra = {}
    if export.panels is not None:
        from archlab.explorer.panels import panels_json

        extra = panels_json(export.panels, folder, key, tests or {})
    return {
        **extra,
        "format": FORMAT,
        "key": key,
        "rows": rows,
        "probs": [_round(p, 3) for p in export.probs.tolist()],
        "confusion": export.confusion,
        "cells": export.cells,
        "methods": methods,
        "skipped": export.skipped,
        "notes": [public_text(n) for n in export.notes],
        "live": write_live(export.live, folder, key),
    }


def _script(path: Path, payload: dict) -> None:
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "x", encoding="utf-8") as handle:  # a new file in a new folder
        handle.write(f"ARCHLAB.add({text});\n")


def write_explorer(
    folder: Path,
    exports: list[RunExport],
    images: torch.Tensor,
    labels: list[int],
    indices: list[int],
    classes: tuple[str, ...],
    test_images: torch.Tensor | None = None,
    test_labels: torch.Tensor | None = None,
) -> None:
    """The whole site, page, data scripts and sprites, into ``folder``: a new, empty
    staging folder (:func:`~archlab.explorer.site.staged_site`), swapped into place after.

    Args:
        folder: the staging folder, empty.
        exports: each run's :class:`~archlab.explorer.export.RunExport`.
        images: the exported test images ``(N, H, W)`` uint8.
        labels: their labels.
        indices: their positions in the test set.
        classes: the class names.
        test_images: the whole test set ``(M, H, W)`` uint8, for the panels' thumbnails.
            Default: none (no panel shows a test image).
        test_labels: its labels ``(M,)``.
    """
    for name in PAGE_FILES:
        if (STATIC / name).is_dir():
            shutil.copytree(STATIC / name, folder / name)
        else:
            shutil.copyfile(STATIC / name, folder / name)
    if any(e.live is not None and e.live.onnx is not None for e in exports):
        write_runtime(folder)  # the page's model runtime (explorer.onnx), when a run is live
    data = folder / "data"
    data.mkdir()
    sprite = save_sprite(images, data, "images", "")
    from archlab.explorer.panels import gallery

    shown = (
        gallery(exports) if test_images is not None else []
    )  # the test images the panels show, as one more sprite
    tests = {i: k for k, i in enumerate(shown)}
    runs = []
    for k, export in enumerate(exports):
        key = f"run-{k}"
        payload = write_run(export, data / key, key, tests)
        _script(data / key / "run.js", payload)
        runs.append({**_facts(key, export), "rows": len(export.rows)})
    _script(
        data / "index.js",
        {
            "index": {
                "format": FORMAT,
                "classes": list(classes),
                "images": [{"index": i, "label": y} for i, y in zip(indices, labels, strict=True)],
                "sprite": sprite,
                "gap": TILE_GAP,
                # the images' pixels, for the live panel to start a drawing from (a page
                # from file:// may draw a PNG but not read its pixels back)
                "pixels": base64.b64encode(images.contiguous().numpy().tobytes()).decode("ascii"),
                "runs": runs,
                **({"tests": _tests(shown, test_images, test_labels, data)} if shown else {}),
            }
        },
    )


def _tests(shown: list[int], images: torch.Tensor, labels: torch.Tensor, data: Path) -> dict:
    """The panels' test images: their indices, labels and sprite (tile k: ``shown[k]``)."""
    return {
        "indices": shown,
        "labels": [int(labels[i]) for i in shown],
        "sprite": save_sprite(images[shown], data, "tests", ""),
    }


def _facts(key: str, export) -> dict:
    """What the run switch says of a run."""
    return {
        "key": key,
        "name": public_text(export.name),
        "label": public_text(export.label),
        "accuracy": export.accuracy,
        "params": export.params,
        "macs": export.macs,
    }
