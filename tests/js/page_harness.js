// The explorer page run in Node without a browser: its scripts (explorer-core.js,
// explorer.js) and a site's data scripts in a vm context whose document is a stub that
// accepts every DOM call. Used by explorer.test.js (node --test) and by read_keys.js,
// which records every data key the page reads (tests/test_explorer_contract.py).
"use strict";

const fs = require("fs");
const path = require("path");
const vm = require("vm");

const ROOT = path.join(__dirname, "..", "..");
const STATIC = path.join(ROOT, "src", "archlab", "explorer", "static");
const SCHEMA = JSON.parse(fs.readFileSync(path.join(ROOT, "src", "archlab", "explorer", "schema.json"), "utf-8"));

// an object that takes any property, call or `new`, and remembers what was set on it
function stub(store = {}) {
  return new Proxy(function () {}, {
    get(_t, key) {
      if (key in store) return store[key];
      if (key === Symbol.toPrimitive) return () => "";
      if (key === "then" || typeof key === "symbol") return undefined;
      store[key] = stub();
      return store[key];
    },
    set(_t, key, value) { store[key] = value; return true; },
    has(_t, key) { return key in store; },
    apply() { return stub(); },
    construct() { return stub(); },
  });
}

// `value` wrapped so that every key read below it is added to `read` as a schema path
function recording(value, where, read, maps) {
  read.add(where);
  if (value === null || typeof value !== "object") return value;
  return new Proxy(value, {
    get(target, key, receiver) {
      if (typeof key === "symbol") return Reflect.get(target, key, receiver);
      if (Array.isArray(target)) {
        if (!/^\d+$/.test(key)) return Reflect.get(target, key, receiver);  // length, map…
        return recording(target[key], where + "[]", read, maps);
      }
      const child = maps.has(where) ? where + "{}" : where + "." + key;
      if (!Object.prototype.hasOwnProperty.call(target, key)) { read.add(child); return undefined; }
      return recording(target[key], child, read, maps);
    },
  });
}

// the page over the site folder `site`; `read` (a Set) records the data keys it reads
async function openPage(site, read = null) {
  const elements = {};
  const document = stub({
    getElementById: (id) => (elements[id] = elements[id] || stub({ id })),
    createElement: (tag) => stub({ tagName: tag.toUpperCase() }),
    addEventListener: () => {},
    body: stub({
      appendChild: (script) => {  // a <script src=...>: run it, then say it loaded
        const file = path.join(site, script.src);
        if (!fs.existsSync(file)) { script.onerror(); return; }
        vm.runInContext(fs.readFileSync(file, "utf-8"), context, { filename: file });
        script.onload();
      },
    }),
  });
  const context = vm.createContext({ document, Image: function () { return stub(); }, performance, console });
  // the page's own scripts in index.html's order: core, explorer, then each panel-*.js
  const html = fs.readFileSync(path.join(STATIC, "index.html"), "utf-8");
  const own = [...html.matchAll(/<script src="([^"/]+\.js)"><\/script>/g)].map((m) => m[1]);
  for (const name of own) {
    vm.runInContext(fs.readFileSync(path.join(STATIC, name), "utf-8"), context, { filename: name });
  }
  const page = context.ARCHLAB;
  if (read) {
    const maps = new Set(SCHEMA.maps);
    const add = page.add;
    page.add = (payload) => add("index" in payload ? { index: recording(payload.index, "index", read, maps) }
      : recording(payload, "run", read, maps));
  }
  const index = path.join(site, "data", "index.js");
  if (fs.existsSync(index)) vm.runInContext(fs.readFileSync(index, "utf-8"), context, { filename: index });
  await page.start();
  const problem = elements.problem && elements.problem.hidden === false ? elements.problem.textContent : null;
  return { page, problem, elements };
}

// every run, fold depth, row, image and confusion cell selected in turn; then each panel's
// channels and timeline frames
function visitEverything(page, site) {
  const index = JSON.parse(fs.readFileSync(path.join(site, "data", "index.js"), "utf-8").slice(12, -3)).index;
  for (const r of index.runs) {
    page.select({ run: r.key });
    const run = JSON.parse(fs.readFileSync(path.join(site, "data", r.key, "run.js"), "utf-8").slice(12, -3));
    const deepest = Math.max(0, ...run.rows.map((row) => row.blocks.length));
    for (let d = -1; d < deepest; d++) page.select({ depth: d < 0 ? null : d });
    page.select({ depth: null });
    run.rows.forEach((_row, i) => page.select({ row: i }));
    index.images.forEach((_im, i) => page.select({ image: i }));
    run.confusion.forEach((line, t) => line.forEach((_v, p) => page.select({ cell: `${t},${p}` })));
    page.select({ cell: null });
    // the panels: every shown channel of every convolution, every snapshot of the timeline
    for (const layer of (run.channels ? run.channels.layers : [])) {
      page.select({ row: layer.row });
      for (const c of layer.channels) { page.state.channel = c.index; page.select({}); }
    }
    (run.timeline || []).forEach((_f, k) => { page.state.frame = k; page.select({}); });
    page.state.frame = null;
    page.select({});
  }
}

module.exports = { openPage, visitEverything, stub, recording, SCHEMA };
