// Unit tests of the live panel's pure functions (static/panel-live.js): the conversion of a
// dropped picture to a Fashion-MNIST-like 28×28 image, the shift and the softmax, each
// against a direct computation. Run by `node --test tests/js/live.test.js`
// (tests/test_explorer_live.py runs it).
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");

const live = require("../../src/archlab/explorer/static/panel-live.js");

// an RGBA picture w×h of one colour, with a rectangle of another
function picture(w, h, paper, ink, [x0, y0, bw, bh]) {
  const rgba = new Uint8ClampedArray(4 * w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const c = x >= x0 && x < x0 + bw && y >= y0 && y < y0 + bh ? ink : paper;
    rgba.set([...c, 255], 4 * (y * w + x));
  }
  return rgba;
}

test("a dark garment on white paper is negated, trimmed, its longest edge made 28, centred", () => {
  const made = live.toFashion(picture(60, 30, [255, 255, 255], [20, 20, 20], [10, 5, 40, 20]), 60, 30);
  assert.deepEqual(made.box, [10, 5, 40, 20]);
  // 40×20 → 28×14, centred: lines 7 … 20 hold the garment, negated: 1 − 20/255
  for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) {
    const want = y >= 7 && y < 21 ? 1 - 20 / 255 : 0;
    assert.ok(Math.abs(made.pixels[y * 28 + x] - want) < 1e-6, `${y},${x}`);
  }
});

test("a light garment on a dark background is kept as it is (not negated)", () => {
  const made = live.toFashion(picture(10, 20, [0, 0, 0], [255, 255, 255], [3, 0, 4, 20]), 10, 20);
  // 4×20 → 6×28 (round(4·1.4) = 6), centred at column 11
  assert.deepEqual(made.box, [3, 0, 4, 20]);
  const ink = [];
  for (let x = 0; x < 28; x++) if (made.pixels[14 * 28 + x] > 0.5) ink.push(x);
  assert.deepEqual(ink, [11, 12, 13, 14, 15, 16]);
});

test("a blank picture gives a black image", () => {
  const made = live.toFashion(picture(5, 5, [255, 255, 255], [255, 255, 255], [0, 0, 0, 0]), 5, 5);
  assert.equal(made.box, null);
  assert.equal(Math.max(...made.pixels), 0);
});

test("a shift moves every pixel and fills with black", () => {
  const px = new Float32Array(784).map((_v, i) => (i % 28) + 28 * Math.floor(i / 28) * 0 + 1);
  const out = live.shifted(px, 2, -1);
  assert.equal(out[0 * 28 + 0], 0);  // came from outside
  assert.equal(out[0 * 28 + 5], px[1 * 28 + 3]);
  assert.equal(out[27 * 28 + 5], 0);  // the last line came from below the image
});

test("softmax matches its definition", () => {
  const p = live.softmax([1, 2, 3]);
  const e = [Math.exp(1), Math.exp(2), Math.exp(3)];
  const s = e[0] + e[1] + e[2];
  p.forEach((v, k) => assert.ok(Math.abs(v - e[k] / s) < 1e-12));
  assert.ok(Math.abs(live.softmax([1000, 1000])[0] - 0.5) < 1e-12);  // no overflow
});

test("a run that is not live says why; a live one, how much of it runs", () => {
  const off = live.liveLine("argmax", { model: null, outputs: [], error: null, why: "torch.onnx could not export it (X)" }, 5);
  assert.equal(off, "argmax is not live: torch.onnx could not export it (X); the rest of the explorer shows it as computed by archlab");
  const on = live.liveLine("cnn", { model: "run-1/model.js", outputs: ["row-0", null, "row-2"], error: 1.234e-5, why: "" }, 3);
  assert.equal(on, "cnn runs here: 2 of 3 rows live; its ONNX graph matched PyTorch within 1.2e-5 on the stored images");
});
