// Unit tests of the explorer page's pure functions and of its failure messages, run by
// Node's own test runner: `node --test tests/js/` (tests/test_explorer_contract.py runs it).
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("fs");
const os = require("os");
const path = require("path");

const core = require("../../src/archlab/explorer/static/explorer-core.js");
const { openPage } = require("./page_harness.js");

test("numbers are written as the page shows them", () => {
  assert.equal(core.fmt(1475338), "1,475,338");
  assert.equal(core.short(1475338), "1.48 M");
  assert.equal(core.short(72120), "72.1 k");
  assert.equal(core.short(9999), "9,999");
  assert.equal(core.shape([32, 28, 28]), "32×28×28");
  assert.equal(core.shape(null), "—");
  assert.equal(core.num(0), "0.000");
  assert.equal(core.num(0.5), "0.500");
  assert.equal(core.num(12.345), "12.35");
  assert.equal(core.num(0.001234), "1.23e-3");
  assert.equal(core.num(-25000), "-2.50e+4");
  assert.equal(core.argmax([0.1, 0.7, 0.2]), 1);
  assert.equal(core.argmax([0.5, 0.5]), 0);  // ties go to the first class
});

test("a tile is found on its sheet, line and column", () => {
  const sprite = { files: ["a-0.png", "a-1.png", "a-2.png"], tile: [28, 20], cols: 3, lines: 2 };
  // walk the sheets as a reader would: left to right, top to bottom, sheet after sheet
  const want = [];
  for (let s = 0; s < 3; s++) for (let l = 0; l < 2; l++) for (let c = 0; c < 3; c++) {
    want.push({ file: sprite.files[s], x: c * 21, y: l * 29 });
  }
  want.slice(0, 14).forEach((w, k) => assert.deepEqual(core.tileAt(sprite, k, 1), w, `tile ${k}`));
});

test("folding shows one line per block at the chosen depth", () => {
  const rows = [
    { name: "x", type: "Conv2d", blocks: [] },
    { name: "b.0", type: "Conv2d", blocks: ["b", "b.0"] },
    { name: "b.1", type: "ReLU", blocks: ["b", "b.1"] },
    { name: "fc", type: "Linear", blocks: [] },
  ];
  assert.deepEqual(core.foldLines(rows, null).map((l) => l.rows), [[0], [1], [2], [3]]);
  const folded = core.foldLines(rows, 0);
  assert.deepEqual(folded.map((l) => [l.name, l.type, l.rows, l.last]),
    [["x", "Conv2d", [0], 0], ["b", "block", [1, 2], 2], ["fc", "Linear", [3], 3]]);
  assert.deepEqual(core.foldLines(rows, 1).map((l) => l.name), ["x", "b.0", "b.1", "fc"]);
  assert.equal(core.defaultDepth(rows), null);
  const many = Array.from({ length: 61 }, (_, i) => ({ name: `r${i}`, type: "ReLU", blocks: ["b"] }));
  assert.equal(core.defaultDepth(many), 0);
});

test("the format is checked", () => {
  assert.equal(core.FORMAT, "archlab-explorer/1");
  assert.equal(core.formatProblem({ format: "archlab-explorer/1" }, "x.js"), null);
  assert.match(core.formatProblem(undefined, "data/index.js"), /data\/index\.js\) could not be loaded/);
  assert.match(core.formatProblem({ format: "archlab-explorer/2" }, "data/index.js"),
    /"archlab-explorer\/2", and this page reads archlab-explorer\/1/);
  assert.match(core.formatProblem({}, "data/index.js"), /format "none"/);
});

function site(files) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "archlab-explorer-"));
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

const index = (extra) => "ARCHLAB.add(" + JSON.stringify({ index: {
  format: "archlab-explorer/1", classes: ["a"], images: [], gap: 1,
  sprite: { files: [], tile: [28, 28], cols: 1, lines: 1 },
  runs: [{ key: "run-0", name: "dnn", label: "dnn", accuracy: 0.5, params: 1, macs: 1, rows: 0 }],
  ...extra } }) + ");\n";

test("a page without its data says so on the page", async () => {
  const { problem } = await openPage(site({}));
  assert.match(problem, /The explorer's data \(data\/index\.js\) could not be loaded/);
});

test("a page with data in another format says so on the page", async () => {
  const { problem } = await openPage(site({ "data/index.js": index({ format: "archlab-explorer/2" }) }));
  assert.match(problem, /data\/index\.js is in the format "archlab-explorer\/2"/);
});

test("a page missing a run's data says which file", async () => {
  const { problem } = await openPage(site({ "data/index.js": index({}) }));
  assert.match(problem, /data\/run-0\/run\.js\) could not be loaded/);
});
