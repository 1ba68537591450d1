// archlab explorer: the map of the test images and the timeline (issue 32). Every test
// image of the map is a point coloured by its true class (a mistake ringed in black);
// hover shows its thumbnail, a click makes it the image that flows through (or shows it
// here when it is not one of the explorer's images). A class in the legend, or a
// confusion cell, highlights its points. With snapshots, a slider moves through training:
// the first convolution's kernels and the map (each snapshot's rotated onto the final).
"use strict";

(() => {
  const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#17becf"];
  const SIZE = 440;
  const local = { klass: null, picked: null, hover: null, playing: null };
  let canvas = null;
  let shown = [];  // the points drawn: [tile, x, y, predicted, px, py]

  // the frames of a run: each snapshot's points, the last the run itself
  const frameOf = (run, state) => {
    if (!run.timeline || state.frame === null || state.frame === undefined) return null;
    return run.timeline[Math.min(state.frame, run.timeline.length - 1)];
  };

  const axes = new Map();  // run → its bounds, computed once
  let layer = { key: null, canvas: null };  // the points drawn once per run, frame and highlight

  function bounds(run) {  // one frame of axes for all of a run's frames: points move, not axes
    if (axes.has(run)) return axes.get(run);
    const all = [run.map.points, ...(run.timeline || []).map((f) => f.points)];
    let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
    for (const points of all) for (const p of points) {
      x0 = Math.min(x0, p[1]); x1 = Math.max(x1, p[1]); y0 = Math.min(y0, p[2]); y1 = Math.max(y1, p[2]);
    }
    axes.set(run, [x0, (x1 - x0) || 1, y0, (y1 - y0) || 1]);
    return axes.get(run);
  }

  function draw(view) {
    const { state } = view;
    const run = view.run();
    const index = view.index();
    const frame = frameOf(run, state);
    const points = frame ? frame.points : run.map.points;
    const cell = state.cell ? state.cell.split(",").map(Number) : null;
    const key = [state.run, frame ? state.frame : "run", local.klass, state.cell].join("|");
    if (layer.key !== key) {  // the points: drawn again only when what they show changes
      const [x0, w, y0, h] = bounds(run);
      shown = points.map((p) => [...p, 6 + ((p[1] - x0) / w) * (SIZE - 12), SIZE - 6 - ((p[2] - y0) / h) * (SIZE - 12)]);
      layer = { key, canvas: pointsLayer(view.element, index, cell) };
    }
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, SIZE, SIZE);
    ctx.drawImage(layer.canvas, 0, 0);
    const chosen = index.images[state.image] ? index.images[state.image].index : -1;
    const mine = shown.find((p) => index.tests.indices[p[0]] === chosen);
    if (mine) {  // the image flowing through
      ctx.strokeStyle = "#111";
      ctx.lineWidth = 3;
      ctx.beginPath();
      ctx.arc(mine[4], mine[5], 9, 0, 2 * Math.PI);
      ctx.stroke();
    }
  }

  // every point of `shown` on a canvas of its own: class by class, a mistake ringed; a
  // highlighted class or confusion cell drawn last and larger over the others, faded
  function pointsLayer(element, index, cell) {
    const c = element("canvas", { width: SIZE, height: SIZE });
    const ctx = c.getContext("2d");
    const labels = index.tests.labels;
    const lit = (label, pred) => (local.klass !== null ? label === local.klass
      : cell ? label === cell[0] && pred === cell[1] : true);
    const dim = local.klass !== null || cell !== null;
    ctx.strokeStyle = "#111";
    ctx.lineWidth = 1;
    for (const bright of dim ? [false, true] : [true]) {
      const r = bright && dim ? 3 : 2;
      ctx.globalAlpha = dim && !bright ? 0.12 : 0.85;
      for (let k = 0; k < COLOURS.length; k++) {
        ctx.fillStyle = COLOURS[k];
        for (const [tile, , , pred, px, py] of shown) {
          const label = labels[tile];
          if (label % COLOURS.length !== k || (dim && lit(label, pred) !== bright)) continue;
          ctx.fillRect(px - r, py - r, 2 * r, 2 * r);
          if (pred !== label && (!dim || bright)) ctx.strokeRect(px - r - 0.5, py - r - 0.5, 2 * r + 1, 2 * r + 1);
        }
      }
    }
    return c;
  }

  // the point nearest (x, y) within 8 pixels; one of the explorer's images first, so that
  // a click in a crowd picks an image that can flow through
  function nearest(x, y, flows = () => false) {
    let best = null;
    let d = [false, -64];
    for (const p of shown) {
      const e = [flows(p[0]), -((p[4] - x) ** 2 + (p[5] - y) ** 2)];
      if (e[1] > -64 && (e[0] > d[0] || (e[0] === d[0] && e[1] > d[1]))) { d = e; best = p; }
    }
    return best;
  }

  function at(event, flows) {
    const r = canvas.getBoundingClientRect();
    return nearest(((event.clientX - r.left) * SIZE) / r.width, ((event.clientY - r.top) * SIZE) / r.height, flows);
  }

  ARCHLAB.panel((view) => {
    const { state, element, $ } = view;
    const box = $("map-panel");
    const run = view.run();
    const index = view.index();
    if (!run.map) { box.hidden = true; box.replaceChildren(); return; }
    box.hidden = false;
    if (!canvas) {
      canvas = element("canvas", { id: "map", width: SIZE, height: SIZE });
      canvas.onmousemove = (event) => {
        const p = at(event);
        local.hover = p ? p[0] : null;
        hover(view);
      };
      canvas.onmouseleave = () => { local.hover = null; hover(view); };
      // where test image `test` is drawn, in the window's pixels (null: not on the map);
      // for a script that points at an image (the browser test)
      canvas.locate = (test) => {
        const p = shown.find((q) => view.index().tests.indices[q[0]] === test);
        if (!p) return null;
        const r = canvas.getBoundingClientRect();
        return { x: r.left + (p[4] * r.width) / SIZE, y: r.top + (p[5] * r.height) / SIZE };
      };
      canvas.onclick = (event) => {
        const ix = view.index();
        const position = (tile) => ix.images.findIndex((im) => im.index === ix.tests.indices[tile]);
        const p = at(event, (tile) => position(tile) >= 0);
        if (!p) return;
        const tile = p[0];
        const pos = position(tile);
        if (pos >= 0) { local.picked = null; view.select({ image: pos }); } else { local.picked = tile; view.select({}); }
      };
    }
    const m = run.map;
    const wrong = m.points.filter((p) => p[3] !== index.tests.labels[p[0]]).length;
    const legend = index.classes.map((name, k) => element("button", {
      type: "button", textContent: name, dataset: { klass: String(k) },
      className: local.klass === k ? "on" : "", style: `border-color:${COLOURS[k % COLOURS.length]}`,
      onclick: () => { local.klass = local.klass === k ? null : k; view.select({}); },
    }));
    const parts = [
      element("h2", { textContent: "Where the classes come apart" }),
      element("div", { className: "note", textContent: `${m.points.length.toLocaleString("en-US")} test images, ` +
        `${m.method.toUpperCase()} of ${m.layer}; ${wrong} mistakes ringed; 10-NN accuracy in 2-D: ` +
        `${(100 * m.knn).toFixed(1)} % (pixels: ${(100 * m.knn_pixels).toFixed(1)} %)` }),
      element("div", { id: "map-legend" }, legend),
      element("div", { id: "map-row" }, [canvas, element("div", { id: "map-side" })]),
    ];
    if (run.timeline) parts.push(timeline(view, run));
    box.replaceChildren(...parts);
    draw(view);
    hover(view);
  });

  function hover(view) {
    const index = view.index();
    const side = view.$("map-side");
    const items = [];
    for (const [tile, what] of [[local.hover, "under the pointer"], [local.picked, "clicked (not among the explorer's images)"]]) {
      if (tile === null || tile === undefined) continue;
      const p = shown.find((q) => q[0] === tile);
      const pred = p ? index.classes[p[3]] : "?";
      items.push(view.element("figure", { className: tile === local.picked ? "picked" : "" }, [
        view.spriteTile(index.tests.sprite, tile, 84, 84),
        view.element("figcaption", { textContent: `${what}: test image ${index.tests.indices[tile]}, ` +
          `${index.classes[index.tests.labels[tile]]} → ${pred}` })]));
    }
    side.replaceChildren(...items);
  }

  function timeline(view, run) {
    const { state, element } = view;
    const frames = run.timeline;
    const k = state.frame === null || state.frame === undefined ? frames.length - 1 : Math.min(state.frame, frames.length - 1);
    const f = frames[k];
    const slider = element("input", { type: "range", id: "timeline", min: "0", max: String(frames.length - 1), value: String(k) });
    slider.oninput = () => { state.frame = Number(slider.value); view.select({}); };
    const play = element("button", { type: "button", id: "timeline-play", textContent: local.playing ? "stop" : "play" });
    play.onclick = () => {
      if (local.playing) { clearInterval(local.playing); local.playing = null; view.select({}); return; }
      state.frame = 0;
      local.playing = setInterval(() => {
        const n = view.run().timeline ? view.run().timeline.length : 0;
        if (!n || state.frame >= n - 1) { clearInterval(local.playing); local.playing = null; } else state.frame += 1;
        view.select({});
      }, 700);
      view.select({});
    };
    const kern = f.kernels;
    const picture = kern ? [element("img", { src: view.picture(kern.file).src, alt: "first convolution's kernels",
      width: kern.cols * (kern.k[1] + view.index().gap) * 4, className: "frame-kernels",
      title: `${kern.out} kernels of ${kern.k.join("×")} (${kern.in} input channel${kern.in > 1 ? "s" : ""}), ` +
        `${kern.cols} a line, weights −${kern.max} (blue) to ${kern.max} (red)` })] : [];
    return element("div", { id: "timeline-box" }, [
      element("h2", { textContent: "Over training" }),
      element("label", {}, [slider, play]),
      element("div", { id: "timeline-label", textContent: `snapshot ${k + 1} of ${frames.length}: iteration ` +
        `${f.iteration.toLocaleString("en-US")}${k === frames.length - 1 ? " (the run)" : ""}, ` +
        `${f.accuracy === null ? "—" : (100 * f.accuracy).toFixed(1) + " %"} right on the map's images` }),
      ...picture,
    ]);
  }
})();
