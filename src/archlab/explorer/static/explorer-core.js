// archlab explorer: the page's pure functions (no page, no data of their own), loaded
// before explorer.js in the browser and by tests/js/ in Node (`node --test`).
"use strict";

var ArchlabCore = (() => {
  const FORMAT = "archlab-explorer/1";  // the data format this page reads (schema.json)

  const fmt = (n) => n.toLocaleString("en-US");
  const short = (n) => (n >= 1e6 ? (n / 1e6).toPrecision(3) + " M" : n >= 1e4 ? (n / 1e3).toPrecision(3) + " k" : fmt(n));
  const shape = (s) => (s === null ? "—" : s.join("×"));
  const num = (v) => {
    const a = Math.abs(v);
    return a !== 0 && (a < 0.01 || a >= 1e4) ? v.toExponential(2) : v.toFixed(a < 1 ? 3 : 2);
  };
  const argmax = (a) => a.reduce((b, v, i) => (v > a[b] ? i : b), 0);

  // where tile k of a sprite is: its sheet's file and its top-left pixel
  function tileAt(sprite, k, gap) {
    const per = sprite.cols * sprite.lines;
    const [h, w] = sprite.tile;
    const on = k % per;
    return {
      file: sprite.files[Math.floor(k / per)],
      x: (on % sprite.cols) * (w + gap),
      y: Math.floor(on / sprite.cols) * (h + gap),
    };
  }

  // the visible lines of a trace: every row, or one line per block at depth `depth`
  function foldLines(rows, depth) {
    const out = [];
    const seen = {};
    rows.forEach((r, i) => {
      const block = depth !== null && r.blocks.length > depth ? r.blocks[depth] : null;
      if (block === null) { out.push({ rows: [i], name: r.name, type: r.type, last: i }); return; }
      if (!(block in seen)) { seen[block] = out.length; out.push({ rows: [], name: block, type: "block", last: i }); }
      const line = out[seen[block]];
      line.rows.push(i);
      line.last = i;
    });
    return out;
  }

  // a large model starts folded, as `archlab shapes --depth 1`
  const defaultDepth = (rows) => (rows.length > 60 && rows.some((r) => r.blocks.length) ? 0 : null);

  // why a data script cannot be shown, in one sentence, or null when it can
  function formatProblem(payload, file) {
    if (!payload) return `The explorer's data (${file}) could not be loaded: write the explorer again with archlab explore.`;
    if (payload.format !== FORMAT) {
      return `${file} is in the format ${JSON.stringify(payload.format ?? "none")}, and this page reads ${FORMAT}: ` +
        "write the explorer again with the same archlab.";
    }
    return null;
  }

  return { FORMAT, fmt, short, shape, num, argmax, tileAt, foldLines, defaultDepth, formatProblem };
})();

if (typeof module !== "undefined") module.exports = ArchlabCore;
