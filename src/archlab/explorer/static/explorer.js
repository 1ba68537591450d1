// archlab explorer: renders what archlab/explorer/export.py computed. Plain JavaScript,
// no library, nothing from another host; the data arrive as scripts (data/*.js) because a
// page opened from file:// may not fetch JSON, and the pictures as PNG sprites drawn into
// canvases (drawing a file:// image is allowed; reading its pixels back is not needed).
"use strict";

var ARCHLAB = (() => {
  const state = { run: null, row: 0, image: 0, cell: null, depth: null };
  const runs = {};
  const panels = [];  // draw functions of the panels in panel-*.js, called after each render
  const pictures = {};
  let index = null;
  const $ = (id) => document.getElementById(id);
  const { fmt, short, shape, num, argmax, tileAt, foldLines, defaultDepth, formatProblem } = ArchlabCore;

  function add(payload) {
    if ("index" in payload) index = payload.index;
    else runs[payload.key] = payload;
  }

  function picture(file) {  // a sprite, loaded once; redraws when it arrives
    if (!pictures[file]) {
      const img = new Image();
      img.src = "data/" + file;
      img.onload = () => { if (img.dataset.waiting) { delete img.dataset.waiting; render(); } };
      pictures[file] = img;
    }
    const img = pictures[file];
    if (!img.complete) img.dataset.waiting = "1";
    return img;
  }

  function script(src) {
    return new Promise((resolve, reject) => {
      const s = document.createElement("script");
      s.src = src;
      s.onload = resolve;
      s.onerror = () => reject(new Error("cannot load " + src));
      document.body.appendChild(s);
    });
  }

  function element(tag, props = {}, children = []) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === "dataset") Object.assign(el.dataset, v);
      else if (k in el) el[k] = v;
      else el.setAttribute(k, v);
    }
    for (const c of children) el.append(c);
    return el;
  }

  // one tile of a sprite into a canvas of w×h pixels, optionally over an image
  function tile(img, sx, sy, tw, th, w, h, under = null) {
    const c = element("canvas", { width: w, height: h });
    const ctx = c.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    if (under) { ctx.drawImage(under[0], under[1], under[2], tw, th, 0, 0, w, h); ctx.globalAlpha = 0.7; }
    if (img.complete && img.naturalWidth) ctx.drawImage(img, sx, sy, tw, th, 0, 0, w, h);
    return c;
  }

  const run = () => runs[state.run];
  const facts = () => index.runs.find((r) => r.key === state.run);

  // tile k of a sprite into a canvas of w×h pixels, optionally over another tile
  function spriteTile(sprite, k, w, h, under = null) {
    const at = tileAt(sprite, k, index.gap);
    const [th, tw] = sprite.tile;
    return tile(picture(at.file), at.x, at.y, tw, th, w, h, under);
  }

  function imageTile(pos, size) {
    return spriteTile(index.sprite, pos, size, size);
  }

  // -- runs ------------------------------------------------------------------------------
  function renderRuns() {
    const nav = $("runs");
    nav.replaceChildren(...index.runs.map((r) => element("button", {
      textContent: r.name, title: r.label, type: "button", dataset: { run: r.key },
      "aria-pressed": String(r.key === state.run), onclick: () => select({ run: r.key }),
    })));
    const table = $("compare");
    table.hidden = index.runs.length < 2;
    if (table.hidden) return;
    const head = element("tr", {}, ["run", "test accuracy", "parameters", "MACs per image", "rows"]
      .map((t) => element("th", { textContent: t })));
    const rows = index.runs.map((r) => element("tr", { className: r.key === state.run ? "current" : "" }, [
      r.name, (100 * r.accuracy).toFixed(2) + " %", fmt(r.params), fmt(r.macs), String(r.rows),
    ].map((t) => element("td", { textContent: t }))));
    table.replaceChildren(head, ...rows);
  }

  // -- architecture ----------------------------------------------------------------------
  // the visible lines: every row, or (folded) one line per block at the chosen depth
  const lines = () => foldLines(run().rows, state.depth);

  function renderDepth() {
    const rows = run().rows;
    const deepest = Math.max(0, ...rows.map((r) => r.blocks.length));
    const select = $("depth");
    const options = [["", "none"]];
    for (let d = 0; d < deepest; d++) options.push([String(d), String(d)]);
    select.replaceChildren(...options.map(([v, t]) => element("option", { value: v, textContent: t })));
    select.value = state.depth === null ? "" : String(state.depth);
    select.disabled = deepest === 0;
  }

  function renderTrace() {
    const rows = run().rows;
    const body = $("trace").tBodies[0];
    const items = lines().map((line, k) => {
      const r = rows[line.last];
      const folded = line.type === "block";
      const params = line.rows.reduce((s, i) => s + rows[i].params, 0);
      const macs = line.rows.reduce((s, i) => s + rows[i].macs, 0);
      const tr = element("tr", {
        className: [folded ? "block" : "", !folded && r.functional ? "functional" : "",
          line.rows.includes(state.row) ? "selected" : ""].join(" ").trim(),
        dataset: { row: String(line.last), line: String(k) },
        title: folded ? `${line.rows.length} rows folded` : (r.formula || ""),
        onclick: () => select({ row: line.last }),
      }, [String(k + 1), line.name || "(forward)", folded ? `block · ${line.rows.length} rows` : r.type,
        shape(r.output), params ? short(params) : "", macs ? short(macs) : ""]
        .map((t, j) => element("td", { textContent: t, className: j >= 4 ? "num" : "" })));
      return tr;
    });
    body.replaceChildren(...items);
    $("notes").replaceChildren(...run().notes.map((n) => element("p", { className: "note", textContent: n })));
    const chosen = body.querySelector("tr.selected");
    if (chosen) chosen.scrollIntoView({ block: "nearest" });
  }

  // -- one image through the layer -------------------------------------------------------
  function renderImages() {
    const probs = run().probs;
    $("images").replaceChildren(...index.images.map((im, pos) => {
      const c = imageTile(pos, 48);
      const pred = argmax(probs[pos]);
      c.className = (pred === im.label ? "" : "wrong") + (pos === state.image ? " selected" : "");
      c.dataset.pos = String(pos);
      c.title = `test image ${im.index}: ${index.classes[im.label]} → ${index.classes[pred]}`;
      c.onclick = () => select({ image: pos });
      return c;
    }));
    const big = $("image-big").getContext("2d");
    big.imageSmoothingEnabled = false;
    big.clearRect(0, 0, 112, 112);
    const at = tileAt(index.sprite, state.image, index.gap);
    const img = picture(at.file);
    const [h, w] = index.sprite.tile;
    if (img.complete && img.naturalWidth) big.drawImage(img, at.x, at.y, w, h, 0, 0, 112, 112);
    const im = index.images[state.image];
    const pred = argmax(probs[state.image]);
    $("image-title").textContent = `test image ${im.index}: ${index.classes[im.label]}, ` +
      `${facts().name} says ${index.classes[pred]} (${(100 * probs[state.image][pred]).toFixed(1)} %)`;
  }

  function renderLayer() {
    const rows = run().rows;
    const r = rows[state.row];
    const reads = r.inputs.map((i) => (i < 0 ? "the input" : `#${i + 1} ${rows[i].name}`)).join(" + ");
    $("layer-title").textContent = `#${state.row + 1} ${r.name || "(forward)"} · ${r.type} · ` +
      `${shape(r.input)} → ${shape(r.output)} · reads ${reads}`;
    $("layer-formula").textContent = [r.formula, r.params ? `${fmt(r.params)} parameters` : "",
      r.macs ? `${fmt(r.macs)} MACs` : ""].filter(Boolean).join(" · ");
    const act = r.act;
    const range = $("layer-range");
    const box = $("channels");
    if (act.kind === "none") {
      range.replaceChildren(element("span", { className: "note", textContent: `no picture of this row: ${act.why}` }));
      box.replaceChildren();
    } else {
      const [lo, hi] = act.ranges[state.image];
      range.replaceChildren(`values ${num(lo)}`, element("span", { className: "colorbar" }), `${num(hi)}` +
        (act.kind === "maps" ? ` · ${act.shape[0]} channel${act.shape[0] > 1 ? "s" : ""} of ${act.shape[1]}×${act.shape[2]}` : ` · ${act.shape[0]} values`));
      box.replaceChildren(...(act.kind === "maps" ? channels(act) : [bars(act, lo, hi)]));
    }
    kernels(r);
  }

  function channels(act) {
    const [c, h, w] = act.shape;
    const scale = Math.max(2, Math.floor(72 / Math.max(h, w)));
    const out = [];
    for (let k = 0; k < c; k++) {  // tile image·C + channel
      out.push(element("figure", {}, [spriteTile(act.sprite, state.image * c + k, w * scale, h * scale),
        element("figcaption", { textContent: String(k) })]));
    }
    return out;
  }

  function bars(act, lo, hi) {
    const values = act.bars[state.image];
    const width = Math.max(300, Math.min(720, values.length * 8));
    const height = 160;
    const c = element("canvas", { width, height, className: "bars" });
    const ctx = c.getContext("2d");
    const v = (q) => lo + (q * (hi - lo)) / 255;
    const y = (x) => height - 4 - ((x - Math.min(lo, 0)) / ((Math.max(hi, 0) - Math.min(lo, 0)) || 1)) * (height - 8);
    const zero = y(0);
    const bw = width / values.length;
    values.forEach((q, i) => {
      const top = y(v(q));
      ctx.fillStyle = v(q) >= 0 ? "#21918c" : "#c0262d";
      ctx.fillRect(i * bw, Math.min(top, zero), Math.max(bw - (bw > 3 ? 1 : 0), 0.6), Math.abs(zero - top) || 1);
    });
    ctx.fillStyle = "#111";
    ctx.fillRect(0, zero, width, 1);
    return c;
  }

  function kernels(r) {
    const box = $("kernels");
    if (!r.kernels) { box.replaceChildren(); return; }
    const k = r.kernels;
    const img = picture(k.file);
    const natural = k.cols * (k.k[1] + index.gap);
    const scale = Math.max(1, Math.min(12, Math.floor(640 / natural)));
    const shown = k.in === 1 ? `${k.out} kernels` : `${k.out} × ${k.in} kernels (output channel per line, input channel per column)`;
    box.replaceChildren(
      element("h2", { textContent: "Kernels" }),
      element("div", { textContent: `${shown} of ${k.k.join("×")}, weights from −${num(k.max)} (blue) to ${num(k.max)} (red)` }),
      element("img", { src: img.src, alt: "kernels", width: natural * scale }),
    );
  }

  // -- the answer and why ----------------------------------------------------------------
  function renderAnswer() {
    const p = run().probs[state.image];
    const label = index.images[state.image].label;
    const pred = argmax(p);
    $("probs").replaceChildren(...p.map((v, k) => element("div", {
      className: "bar" + (k === pred ? " pred" : "") + (k === label ? " true" : ""),
    }, [element("span", { className: "name", textContent: index.classes[k] }),
      element("div", {}, [element("div", { className: "fill", style: `width:${(100 * v).toFixed(1)}%` })]),
      element("span", { className: "pct", textContent: (100 * v).toFixed(1) + " %" })])));
    const at = tileAt(index.sprite, state.image, index.gap);
    const base = picture(at.file);
    const under = [base, at.x, at.y];
    const figures = run().methods.map((m) => {
      const c = spriteTile(m.sprite, state.image, 72, 72, base.complete ? under : null);
      const scale = m.scales[state.image];
      return element("figure", { title: m.settings, dataset: { method: m.name } }, [c, element("figcaption", {
        textContent: `${m.title.replace(/^Grad-CAM on .*/, "Grad-CAM").replace("Integrated Gradients", "Int. Gradients")}\n${m.signed ? "±" : "0…"}${num(scale)}`,
      })]);
    });
    const skipped = Object.entries(run().skipped).map(([m, why]) =>
      element("div", { className: "skipped", textContent: `${m}: ${why}` }));
    $("attributions").replaceChildren(...figures, ...skipped);
  }

  function renderConfusion() {
    const m = run().confusion;
    const n = m.length;
    const cls = index.classes;
    const head = element("tr", {}, [element("th", { textContent: "true ↓ predicted →" }),
      ...cls.map((c) => element("th", { className: "col", textContent: c }))]);
    const rows = m.map((line, t) => {
      const total = line.reduce((a, b) => a + b, 0) || 1;
      return element("tr", {}, [element("th", { textContent: cls[t] }), ...line.map((v, p) => {
        const share = v / total;
        const key = `${t},${p}`;
        const light = t === p ? `rgba(26,127,55,${0.15 + 0.7 * share})` : `rgba(192,38,45,${Math.min(0.85, 4 * share)})`;
        return element("td", {
          textContent: String(v),
          className: (run().cells[key] ? "has" : "") + (state.cell === key ? " selected" : ""),
          style: `background:${v ? light : "#fff"}; color:${share > 0.5 ? "#fff" : "#111"}`,
          dataset: { cell: key },
          title: `true ${cls[t]}, predicted ${cls[p]}: ${v} test images`,
          onclick: () => select({ cell: key }),
        });
      })]);
    });
    $("confusion").replaceChildren(head, ...rows.slice(0, n));
    const box = $("cell");
    if (state.cell === null) {
      box.replaceChildren(element("span", { className: "note", textContent: "click a cell: its images here (• marks the cells with images in this explorer)" }));
      return;
    }
    const [t, p] = state.cell.split(",").map(Number);
    const mine = run().cells[state.cell] || [];
    const thumbs = mine.map((pos) => {
      const c = imageTile(pos, 56);
      c.dataset.pos = String(pos);
      c.className = (t === p ? "" : "wrong") + (pos === state.image ? " selected" : "");
      c.title = `test image ${index.images[pos].index}`;
      c.onclick = () => select({ image: pos });
      return c;
    });
    box.replaceChildren(
      element("div", { textContent: `true ${cls[t]}, predicted ${cls[p]}: ${m[t][p]} test images, ${mine.length} of them in this explorer` +
        (mine.length ? " (click one to follow it)" : "") }),
      element("div", { id: "cell-images", className: "strip" }, thumbs),
    );
  }

  // -- state -----------------------------------------------------------------------------
  function render() {
    renderRuns();
    renderDepth();
    renderTrace();
    renderImages();
    renderLayer();
    renderAnswer();
    renderConfusion();
    for (const draw of panels) draw(view);
  }

  // what a panel (static/panel-*.js) may use: it registers with ARCHLAB.panel(draw) and
  // draw(view) runs after every render; it reads the data through these, never a global
  const view = {
    state, select, element, picture, spriteTile, imageTile, script, $,
    run: () => runs[state.run], facts: () => facts(), index: () => index,
  };
  function panel(draw) { panels.push(draw); }

  function select(change) {
    if ("run" in change && change.run !== state.run) {
      const rows = run().rows.length;
      state.run = change.run;
      const now = run().rows;
      if (state.row >= now.length || rows !== now.length) state.row = Math.min(state.row, now.length - 1);
      state.depth = defaultDepth(now);
    }
    if ("row" in change) state.row = change.row;
    if ("image" in change) state.image = change.image;
    if ("cell" in change) state.cell = change.cell;
    if ("depth" in change) state.depth = change.depth;
    render();
    document.body.dataset.updated = String(performance.now());
  }

  function key(event) {
    if (event.target.tagName === "SELECT") return;
    const ls = lines();
    const at = ls.findIndex((l) => l.rows.includes(state.row));
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      const next = Math.max(0, Math.min(ls.length - 1, at + (event.key === "ArrowDown" ? 1 : -1)));
      select({ row: ls[next].last });
    } else if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
      const n = index.images.length;
      select({ image: (state.image + (event.key === "ArrowRight" ? 1 : n - 1)) % n });
    } else return;
    event.preventDefault();
  }

  // a page that cannot show its data says so, on the page
  function fail(message) {
    const box = $("problem");
    box.textContent = message;
    box.hidden = false;
    document.body.dataset.failed = "1";
  }

  async function start() {
    try {
      await show();
    } catch (error) {
      fail(error.message);
    }
  }

  async function show() {
    const problem = formatProblem(index, "data/index.js");
    if (problem) throw new Error(problem);
    await Promise.all(index.runs.map((r) => script(`data/${r.key}/run.js`).catch(() => null)));
    for (const r of index.runs) {
      const why = formatProblem(runs[r.key], `data/${r.key}/run.js`);
      if (why) throw new Error(why);
    }
    state.run = index.runs[0].key;
    state.depth = defaultDepth(run().rows);
    // start on the first row: the page reads from the input down, and the row shown is
    // the table's first (it opened on row 2, which the table gave no reason for)
    state.row = 0;
    const wrong = index.images.findIndex((im, pos) => argmax(run().probs[pos]) !== im.label);
    state.image = 0;
    state.cell = null;
    $("depth").onchange = (e) => select({ depth: e.target.value === "" ? null : Number(e.target.value) });
    document.addEventListener("keydown", key);
    render();
    document.body.dataset.ready = "1";
    return wrong;
  }

  return { add, start, select, state, panel };
})();
