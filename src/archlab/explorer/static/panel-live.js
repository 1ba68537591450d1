// archlab explorer, live panel (issue 30): the selected run's model runs in the page, on a
// 28×28 drawing, with onnxruntime-web (vendor/, single-threaded WebAssembly: works from
// file://). Each run's graph (data/run-K/model.js, base64) has every trace row's output as
// an output named in run.live.outputs. A stroke runs the model at most once an animation
// frame: the probabilities (top 3 always shown), the selected row's channels and an
// occlusion map redraw. Occlusion, not a gradient: the runtime runs forward passes only
// (no autograd in the page), and occlusion needs nothing else; it runs after the answer,
// one batch of patches, so drawing never waits for it.
"use strict";

var ArchlabLive = (() => {
  const SIZE = 28;
  const PATCH = 4;  // occlusion: 4×4 patches of black, stride 4 (7×7 = 49 forward passes)
  const OCCLUSION_WAIT = 120;  // ms the drawing rests before its occlusion map is computed
  const live = {
    pixels: new Float32Array(SIZE * SIZE),  // the drawing, 0 black … 1 white (ink)
    brush: 1.5, noise: 0, status: "", result: null, occlusion: null, runs: 0, error: null,
  };
  const sessions = {};  // run key → Promise of an InferenceSession
  let view = null;
  let built = false;
  let shown = null;  // the run whose session answered last
  let pending = false;
  let busy = false;
  let runtime = null;

  // -- pure helpers (also used by the tests through ArchlabLive) ----------------------------
  function decode(b64) {
    const text = atob(b64);
    const out = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
    return out;
  }

  function softmax(logits) {
    const m = Math.max(...logits);
    const e = logits.map((v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  }

  // a dropped picture as Fashion-MNIST's images were made: grey, negated when its
  // background is light, trimmed to its ink, longest edge resized to 28, centred
  function toFashion(rgba, w, h) {
    const grey = new Float32Array(w * h);
    for (let i = 0; i < w * h; i++) {
      grey[i] = (0.299 * rgba[4 * i] + 0.587 * rgba[4 * i + 1] + 0.114 * rgba[4 * i + 2]) / 255 * (rgba[4 * i + 3] / 255) +
        (1 - rgba[4 * i + 3] / 255);  // a transparent pixel counts as white paper
    }
    let border = 0;
    let count = 0;
    for (let x = 0; x < w; x++) { border += grey[x] + grey[(h - 1) * w + x]; count += 2; }
    for (let y = 0; y < h; y++) { border += grey[y * w] + grey[y * w + w - 1]; count += 2; }
    if (border / count > 0.5) for (let i = 0; i < grey.length; i++) grey[i] = 1 - grey[i];
    let x0 = w, y0 = h, x1 = -1, y1 = -1;
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      if (grey[y * w + x] > 0.1) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
    }
    if (x1 < 0) return { pixels: new Float32Array(SIZE * SIZE), box: null };
    const bw = x1 - x0 + 1;
    const bh = y1 - y0 + 1;
    const scale = SIZE / Math.max(bw, bh);
    const ow = Math.max(1, Math.round(bw * scale));
    const oh = Math.max(1, Math.round(bh * scale));
    const ox = Math.floor((SIZE - ow) / 2);
    const oy = Math.floor((SIZE - oh) / 2);
    const out = new Float32Array(SIZE * SIZE);
    for (let y = 0; y < oh; y++) for (let x = 0; x < ow; x++) {  // box filter: the mean of the source pixels
      const sx0 = x0 + Math.floor(x / scale), sx1 = Math.max(sx0 + 1, x0 + Math.floor((x + 1) / scale));
      const sy0 = y0 + Math.floor(y / scale), sy1 = Math.max(sy0 + 1, y0 + Math.floor((y + 1) / scale));
      let s = 0, n = 0;
      for (let sy = sy0; sy < Math.min(sy1, y1 + 1); sy++) for (let sx = sx0; sx < Math.min(sx1, x1 + 1); sx++) { s += grey[sy * w + sx]; n++; }
      out[(oy + y) * SIZE + ox + x] = n ? s / n : 0;
    }
    return { pixels: out, box: [x0, y0, bw, bh] };
  }

  function shifted(pixels, dx, dy) {
    const out = new Float32Array(SIZE * SIZE);
    for (let y = 0; y < SIZE; y++) for (let x = 0; x < SIZE; x++) {
      const sx = x - dx, sy = y - dy;
      if (sx >= 0 && sy >= 0 && sx < SIZE && sy < SIZE) out[y * SIZE + x] = pixels[sy * SIZE + sx];
    }
    return out;
  }

  // the model's input: the drawing with the noise slider's Gaussian noise (a fixed seed, so
  // a stroke changes the drawing, not the noise), clipped to [0, 1]
  function input() {
    const out = new Float32Array(live.pixels);
    if (live.noise > 0) {
      let seed = 12345;
      const rand = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return (seed + 0.5) / 2147483648; };
      for (let i = 0; i < out.length; i++) {
        const g = Math.sqrt(-2 * Math.log(rand())) * Math.cos(2 * Math.PI * rand());
        out[i] = Math.min(1, Math.max(0, out[i] + live.noise * g));
      }
    }
    return out;
  }

  // what the panel says of a run's live model (run.live): how much of it runs, or why not
  function liveLine(name, spec, rows) {
    const why = spec.why;
    if (spec.model === null) return `${name} is not live: ${why}; the rest of the explorer shows it as computed by archlab`;
    return `${name} runs here: ${spec.outputs.filter((o) => o !== null).length} of ${rows} rows live; ` +
      `its ONNX graph matched PyTorch within ${Number(spec.error).toExponential(1)} on the stored images`;
  }

  // -- the runtime and the models -------------------------------------------------------------
  async function startRuntime() {
    await view.script("vendor/ort-wasm-simd.wasm.js");
    const zipped = new Blob([decode(globalThis.ARCHLAB_ORT_WASM_GZ)]);
    const wasm = await new Response(zipped.stream().pipeThrough(new DecompressionStream("gzip"))).arrayBuffer();
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.simd = true;
    ort.env.wasm.wasmPaths = { "ort-wasm-simd.wasm": URL.createObjectURL(new Blob([wasm], { type: "application/wasm" })) };
  }

  function session(key, file) {
    if (!sessions[key]) {
      sessions[key] = (async () => {
        runtime = runtime || startRuntime();
        await runtime;
        await view.script("data/" + file);
        const bytes = decode(globalThis.ARCHLAB_MODELS[key]);
        return ort.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
      })();
    }
    return sessions[key];
  }

  // one run of a session at a time: the answer and the occlusion batches take turns
  let queue = Promise.resolve();
  function exclusive(job) {
    const done = queue.then(job, job);
    queue = done.catch(() => null);
    return done;
  }

  // run the selected run's model on the drawing: at most once an animation frame, the
  // latest drawing always (a stroke during a run is run after it)
  function schedule() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; runNow(); });
  }

  async function runNow() {
    if (busy) { live.again = true; return; }
    const r = view.run();
    const spec = r.live;
    if (!spec.model) return;
    busy = true;
    const t0 = performance.now();
    try {
      const s = await session(r.key, spec.model);
      const x = input();
      const feeds = { image: new ort.Tensor("float32", x, [1, 1, SIZE, SIZE]) };
      const out = await exclusive(() => s.run(feeds));
      if (view.run().key !== r.key) return;  // switched while it ran: run again below
      const rows = {};
      spec.outputs.forEach((name, i) => { if (name) rows[i] = { data: out[name].data, dims: out[name].dims }; });
      const logits = Array.from(out.logits.data);
      live.result = { key: r.key, logits, probs: softmax(logits), rows, input: x };
      live.runs += 1;
      shown = r.key;
      drawAnswer();
      live.ms = performance.now() - t0;
      document.body.dataset.live = String(live.runs);
      // the map lags the stroke: it starts once the drawing has rested a moment, in
      // small batches that give way to the next stroke, so it never delays an answer
      clearTimeout(live.occlusionTimer);
      const at = live.runs;
      live.occlusionTimer = setTimeout(() => occlude(s, r.key, x, at), OCCLUSION_WAIT);
    } catch (error) {
      live.error = String(error && error.message || error);
      setStatus("the model could not run here: " + live.error);
    } finally {
      busy = false;
      if (live.again || (shown !== view.run().key)) { live.again = false; schedule(); }
    }
  }

  async function occlude(s, key, x, at) {
    const p0 = live.result.probs;
    const target = p0.indexOf(Math.max(...p0));
    const n = SIZE / PATCH;
    const map = new Float32Array(n * n);
    const fresh = () => at === live.runs && key === view.run().key;
    for (let start = 0; start < n * n; start += n) {  // one line of patches a batch
      if (!fresh() || busy) return;  // a newer stroke: its own map, later
      const batch = new Float32Array(n * SIZE * SIZE);
      for (let j = 0; j < n; j++) {
        const k = start + j;
        const py = Math.floor(k / n) * PATCH, px = (k % n) * PATCH;
        batch.set(x, j * SIZE * SIZE);
        for (let y = py; y < py + PATCH; y++) for (let xx = px; xx < px + PATCH; xx++) batch[j * SIZE * SIZE + y * SIZE + xx] = 0;
      }
      const feeds = { image: new ort.Tensor("float32", batch, [n, 1, SIZE, SIZE]) };
      const out = await exclusive(() => s.run(feeds, ["logits"]));
      const logits = out.logits.data;
      for (let j = 0; j < n; j++) map[start + j] = p0[target] - softmax(Array.from(logits.slice(j * 10, j * 10 + 10)))[target];
    }
    if (!fresh()) return;
    live.occlusion = { map, target, n, at };
    drawOcclusion();
  }

  // -- the panel --------------------------------------------------------------------------------
  function setStatus(text) {
    live.status = text;
    const box = view.$("live-status");
    if (box) box.textContent = text;
  }

  function paint(event, canvas) {
    const rect = canvas.getBoundingClientRect();
    const cx = ((event.clientX - rect.left) / rect.width) * SIZE;
    const cy = ((event.clientY - rect.top) / rect.height) * SIZE;
    const r = live.brush;
    for (let y = Math.max(0, Math.floor(cy - r - 1)); y < Math.min(SIZE, cy + r + 1); y++) {
      for (let x = Math.max(0, Math.floor(cx - r - 1)); x < Math.min(SIZE, cx + r + 1); x++) {
        const d = Math.hypot(x + 0.5 - cx, y + 0.5 - cy);
        const ink = Math.min(1, Math.max(0, r + 0.5 - d));  // a soft edge, one pixel wide
        const i = y * SIZE + x;
        live.pixels[i] = live.erase ? Math.min(live.pixels[i], 1 - ink) : Math.max(live.pixels[i], ink);
      }
    }
    changed();
  }

  function changed() {
    drawDrawing();
    if (typeof ort !== "undefined" && view.run().live.model) schedule();
  }

  function set(pixels) {
    live.pixels = Float32Array.from(pixels);
    changed();
  }

  function fromImage(pos) {
    const all = decode(view.index().pixels);
    set(Array.from(all.subarray(pos * SIZE * SIZE, (pos + 1) * SIZE * SIZE), (v) => v / 255));
  }

  function drop(file) {
    const reader = new FileReader();
    reader.onload = () => {
      const img = new Image();
      img.onload = () => {
        const c = document.createElement("canvas");
        c.width = img.naturalWidth;
        c.height = img.naturalHeight;
        const ctx = c.getContext("2d");
        ctx.drawImage(img, 0, 0);
        const made = toFashion(ctx.getImageData(0, 0, c.width, c.height).data, c.width, c.height);
        setStatus(`${file.name}: ${c.width}×${c.height} → grey, ${made.box ? "trimmed, longest edge to 28, centred" : "blank"}`);
        set(made.pixels);
      };
      img.src = reader.result;  // a data: URL: its pixels may be read back
    };
    reader.readAsDataURL(file);
  }

  function button(text, title, onclick) {
    return view.element("button", { type: "button", textContent: text, title, onclick });
  }

  function build() {
    const box = view.$("live");
    const canvas = view.element("canvas", { id: "live-draw", width: SIZE, height: SIZE, title: "draw here; drop an image file" });
    canvas.style.touchAction = "none";
    canvas.addEventListener("pointerdown", (e) => { canvas.setPointerCapture(e.pointerId); live.down = true; paint(e, canvas); });
    canvas.addEventListener("pointermove", (e) => { if (live.down) paint(e, canvas); });
    const up = () => { live.down = false; };
    canvas.addEventListener("pointerup", up);
    canvas.addEventListener("pointercancel", up);
    box.addEventListener("dragover", (e) => e.preventDefault());
    box.addEventListener("drop", (e) => { e.preventDefault(); if (e.dataTransfer.files[0]) drop(e.dataTransfer.files[0]); });
    const file = view.element("input", { type: "file", accept: "image/*", id: "live-file", onchange: (e) => e.target.files[0] && drop(e.target.files[0]) });
    const brush = view.element("input", { type: "range", min: "0.5", max: "4", step: "0.5", value: String(live.brush), id: "live-brush",
      oninput: (e) => { live.brush = Number(e.target.value); } });
    const noise = view.element("input", { type: "range", min: "0", max: "0.5", step: "0.05", value: "0", id: "live-noise",
      oninput: (e) => { live.noise = Number(e.target.value); schedule(); } });
    const erase = view.element("input", { type: "checkbox", id: "live-erase", onchange: (e) => { live.erase = e.target.checked; } });
    const shift = (dx, dy) => set(shifted(live.pixels, dx, dy));
    box.replaceChildren(
      view.element("h2", { textContent: "Draw: the model answers live" }),
      view.element("div", { className: "live-row" }, [
        view.element("div", {}, [canvas, view.element("div", { className: "live-shift" }, [
          button("←", "shift the drawing left 2 pixels (Shift+←)", () => shift(-2, 0)),
          button("↑", "up 2 pixels (Shift+↑)", () => shift(0, -2)),
          button("↓", "down 2 pixels (Shift+↓)", () => shift(0, 2)),
          button("→", "right 2 pixels (Shift+→)", () => shift(2, 0)),
        ])]),
        view.element("div", { className: "live-controls" }, [
          view.element("div", {}, [button("clear", "a black canvas", () => set(new Float32Array(SIZE * SIZE))),
            button("invert", "white ↔ black", () => set(live.pixels.map((v) => 1 - v))),
            button("from test image", "start from the test image selected above", () => fromImage(view.state.image))]),
          view.element("label", {}, ["brush ", brush]),
          view.element("label", {}, [erase, " erase"]),
          view.element("label", {}, ["noise ", noise]),
          view.element("label", { className: "live-file" }, ["or drop / open an image ", file]),
        ]),
        view.element("div", { id: "live-answer" }),
        view.element("canvas", { id: "live-occlusion", width: SIZE, height: SIZE, title: "occlusion: how much the top class's probability drops when a 4×4 patch is blacked out" }),
      ]),
      view.element("div", { id: "live-status", className: "note" }),
      view.element("div", { id: "live-channels" }),
    );
    document.addEventListener("keydown", (e) => {
      if (!e.shiftKey) return;
      const d = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] }[e.key];
      if (!d) return;
      e.preventDefault();
      e.stopImmediatePropagation();  // the explorer's own arrows move through layers and images
      shift(d[0], d[1]);
    }, true);
    built = true;
  }

  function drawDrawing() {
    const c = view.$("live-draw");
    if (!c || !c.getContext) return;
    const ctx = c.getContext("2d");
    const img = ctx.createImageData(SIZE, SIZE);
    const x = live.noise > 0 ? input() : live.pixels;
    for (let i = 0; i < SIZE * SIZE; i++) {
      const v = Math.round(255 * x[i]);
      img.data.set([v, v, v, 255], 4 * i);
    }
    ctx.putImageData(img, 0, 0);
  }

  const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  function viridis(t) {
    const f = Math.min(0.9999, Math.max(0, t)) * (VIRIDIS.length - 1);
    const k = Math.floor(f), u = f - k;
    return VIRIDIS[k].map((c, j) => Math.round(c + u * (VIRIDIS[k + 1][j] - c)));
  }

  function drawAnswer() {
    const res = live.result;
    const classes = view.index().classes;
    const order = res.probs.map((p, k) => [p, k]).sort((a, b) => b[0] - a[0]);
    view.$("live-answer").replaceChildren(
      view.element("div", { className: "live-top", textContent: order.slice(0, 3).map(([p, k]) => `${classes[k]} ${(100 * p).toFixed(1)} %`).join(" · ") }),
      ...res.probs.map((p, k) => view.element("div", { className: "bar" + (k === order[0][1] ? " pred" : ""), dataset: { k: String(k) } }, [
        view.element("span", { className: "name", textContent: classes[k] }),
        view.element("div", {}, [view.element("div", { className: "fill", style: `width:${(100 * p).toFixed(1)}%` })]),
        view.element("span", { className: "pct", textContent: (100 * p).toFixed(1) + " %" })])),
    );
    drawChannels();
  }

  function drawChannels() {
    const box = view.$("live-channels");
    const res = live.result;
    if (!box || !res) return;
    const row = view.state.row;
    const out = res.rows[row];
    const name = view.run().rows[row].name || view.run().rows[row].type;
    if (!out) { box.replaceChildren(view.element("span", { className: "note", textContent: `#${row + 1} ${name}: no live output for this row` })); return; }
    const d = out.dims.slice(1);
    const [c, h, w] = d.length === 3 ? d : d.length === 2 ? [1, d[0], d[1]] : [1, 1, d.reduce((a, b) => a * b, 1)];
    let lo = Infinity, hi = -Infinity;
    for (const v of out.data) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    const head = view.element("div", { className: "note", textContent: `the drawing through #${row + 1} ${name}: ${d.join("×")}, values ${lo.toFixed(3)} … ${hi.toFixed(3)}` });
    const figures = [];
    const scale = h === 1 ? 1 : Math.max(1, Math.floor(48 / Math.max(h, w)));
    const shownC = Math.min(c, 64);
    for (let k = 0; k < shownC; k++) {
      const canvas = view.element("canvas", { width: w, height: h });
      canvas.style.width = h === 1 ? "100%" : `${w * scale}px`;
      canvas.style.height = `${h === 1 ? 24 : h * scale}px`;
      const ctx = canvas.getContext("2d");
      const img = ctx.createImageData(w, h);
      for (let i = 0; i < h * w; i++) img.data.set([...viridis((out.data[k * h * w + i] - lo) / ((hi - lo) || 1)), 255], 4 * i);
      ctx.putImageData(img, 0, 0);
      figures.push(canvas);
    }
    box.replaceChildren(head, view.element("div", { className: "live-maps" }, figures));
  }

  function drawOcclusion() {
    const c = view.$("live-occlusion");
    const o = live.occlusion;
    if (!c || !c.getContext || !o) return;
    const ctx = c.getContext("2d");
    const img = ctx.createImageData(SIZE, SIZE);
    const m = Math.max(1e-6, ...Array.from(o.map, Math.abs));
    for (let y = 0; y < SIZE; y++) for (let x = 0; x < SIZE; x++) {
      const v = o.map[Math.floor(y / PATCH) * o.n + Math.floor(x / PATCH)] / m;  // red: the patch helped
      const g = Math.round(255 * live.result.input[y * SIZE + x] * 0.35);
      img.data.set(v >= 0 ? [g + Math.round((255 - g) * v), g, g, 255] : [g, g, g + Math.round((255 - g) * -v), 255], 4 * (y * SIZE + x));
    }
    ctx.putImageData(img, 0, 0);
    c.title = `occlusion for ${view.index().classes[o.target]}: red, blacking out that 4×4 patch lowers its probability (up to ${(100 * m).toFixed(1)} points); blue, raises it`;
  }

  // after every render of the explorer: the run, row or image may have changed
  function draw(v) {
    view = v;
    const r = v.run();
    const spec = r.live;  // model, outputs, error, why: all read here (the data contract)
    const ready = spec.model !== null && typeof ort !== "undefined" && typeof DecompressionStream !== "undefined";
    const say = liveLine(v.facts().name, spec, r.rows.length);
    const pixels = v.index().pixels;
    if (!built) {
      build();
      if (pixels && typeof atob !== "undefined") fromImage(v.state.image);  // start from the selected test image
    }
    setStatus(ready || spec.model === null ? say : say + " (no WebAssembly runtime in this browser)");
    if (!ready) return;
    if (shown !== r.key) schedule();  // a switched run answers the same drawing
    else drawChannels();
  }

  if (typeof ARCHLAB !== "undefined") ARCHLAB.panel(draw);
  return { live, set, toFashion, shifted, softmax, decode, input, liveLine, run: () => runNow() };
})();

if (typeof module !== "undefined") module.exports = ArchlabLive;
