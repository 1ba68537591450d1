// archlab explorer: does it know when it is wrong? (issue 33). Per run: the reliability
// diagram before and after temperature scaling with the ECE, and the explorer's images
// marked with the run's confidence (its largest probability); and how well that
// confidence tells scikit-learn's handwritten digits from the test set (AUROC).
"use strict";

(() => {
  const W = 300;
  const H = 220;
  let drawn = null;  // the run the panel was built for: an image click only moves the mark

  function diagram(view, bins) {
    const c = view.element("canvas", { id: "reliability", width: W, height: H });
    const ctx = c.getContext("2d");
    const pad = 28;
    const size = H - 2 * pad + 12;
    const x = (v) => pad + v * size;
    const y = (v) => H - pad - v * size;
    ctx.strokeStyle = "#999";
    ctx.beginPath(); ctx.moveTo(x(0), y(0)); ctx.lineTo(x(1), y(1)); ctx.stroke();  // perfect calibration
    const n = bins.before.counts.length;
    bins.before.accuracy.forEach((acc, k) => {  // before: bars of each bin's accuracy
      if (acc === null) return;
      ctx.fillStyle = "rgba(192,38,45,0.55)";
      ctx.fillRect(x(k / n) + 1, y(acc), size / n - 2, y(0) - y(acc));
    });
    ["before", "after"].forEach((when) => {  // mean confidence against accuracy: dots
      const b = bins[when];
      ctx.fillStyle = when === "before" ? "#c0262d" : "#1f4e9c";
      b.confidence.forEach((conf, k) => {
        if (conf === null || b.accuracy[k] === null || !b.counts[k]) return;
        const r = Math.min(7, 2 + Math.sqrt(b.counts[k]) / 4);
        ctx.beginPath(); ctx.arc(x(conf), y(b.accuracy[k]), r, 0, 2 * Math.PI); ctx.fill();
      });
    });
    ctx.fillStyle = "#111";
    ctx.font = "12px sans-serif";
    ctx.fillText("confidence →", x(0.55), H - 6);
    ctx.fillText("accuracy ↑", 2, pad - 10);
    return c;
  }

  ARCHLAB.panel((view) => {
    const { state, element, $ } = view;
    const box = $("confidence-panel");
    const run = view.run();
    const index = view.index();
    const c = run.confidence;
    if (!c) { box.hidden = true; box.replaceChildren(); drawn = null; return; }
    box.hidden = false;
    if (drawn === run) {
      Array.from($("confidence-images").children).forEach((fig, pos) => fig.classList.toggle("selected", pos === state.image));
      return;
    }
    drawn = run;
    const pct = (v) => (100 * v).toFixed(2) + " %";
    const table = element("table", { id: "calibration" }, [
      element("tr", {}, ["", "accuracy", "ECE", "adaptive ECE", "NLL"].map((t) => element("th", { textContent: t }))),
      ...[["before", c.before], [`after T = ${c.temperature}`, c.after]].map(([when, s]) => element("tr", {},
        [when, pct(s.accuracy), pct(s.ece), pct(s.ace), s.nll.toFixed(3)].map((t) => element("td", { textContent: t })))),
    ]);
    const marks = index.images.map((im, pos) => {
      const p = run.probs[pos];
      const pred = p.indexOf(Math.max(...p));
      const fig = element("figure", { className: (pred === im.label ? "right" : "wrong") + (pos === state.image ? " selected" : ""),
        dataset: { pos: String(pos) }, title: `test image ${im.index}: ${index.classes[im.label]} → ${index.classes[pred]}`,
        onclick: () => view.select({ image: pos }) }, [view.imageTile(pos, 40),
        element("figcaption", { textContent: (100 * p[pred]).toFixed(0) + " %" })]);
      return fig;
    });
    box.replaceChildren(
      element("h2", { textContent: `Does ${view.facts().name} know when it is wrong?` }),
      element("div", { id: "confidence-row" }, [diagram(view, c.bins), table]),
      element("div", { className: "note", textContent: `reliability: bars and red dots before, blue dots after ` +
        `temperature scaling (one number T divides every logit; fitted on ${c.fit}); dot size: images in the bin` }),
      element("div", { id: "ood", textContent: `Confidence on ${c.ood.set} against the test set, AUROC ` +
        `(1: always lower on the digits, 0.5: no better than chance): max softmax ${c.ood.msp.toFixed(3)}, ` +
        `energy ${c.ood.energy.toFixed(3)}` }),
      element("div", { textContent: "The explorer's images with the run's confidence (green: right, red: wrong):" }),
      element("div", { id: "confidence-images" }, marks),
    );
    // a sprite still loading draws blank tiles: build again on the render its arrival calls
    if (!index.sprite.files.every((f) => view.picture(f).complete)) drawn = null;
  });
})();
