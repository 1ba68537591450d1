// archlab explorer: "what this channel looks for" and the two-choice quiz (issue 31).
// Click a channel of a convolution's output (or one of the synthesised images here): its
// synthesised image, its top test images (click one: it flows through, or is shown here)
// and its effective receptive field. The quiz after Borowski et al. (ICLR 2021): the
// channel's reference images and two held-out queries; the class picks the one that
// excites the channel more, and the page keeps the score.
"use strict";

(() => {
  const score = { asked: 0, right: 0, answers: {} };  // one answer per run, layer and channel
  let picked = null;  // a top image that is not among the explorer's: shown here
  let drawn = null;  // what the panel was built for: an image click only moves the mark

  // which query is shown first: fixed per item (so a class sees the same item twice alike)
  const strongFirst = (key) => [...key].reduce((h, ch) => (h * 31 + ch.charCodeAt(0)) >>> 0, 7) % 2 === 0;

  ARCHLAB.panel((view) => {
    const { state, element, $ } = view;
    const box = $("channel-panel");
    const data = view.run().channels;
    const index = view.index();
    const layer = data ? data.layers.find((l) => l.row === state.row) : undefined;
    if (!layer) {
      box.hidden = true;
      box.replaceChildren();
      drawn = null;
      return;
    }
    box.hidden = false;
    const shown = layer.channels.map((c) => c.index);
    if (!shown.includes(state.channel)) state.channel = shown[0];
    const at = shown.indexOf(state.channel);
    const ch = layer.channels[at];
    const choose = (c) => { state.channel = c; picked = null; view.select({}); };

    // the channel pictures of the layer (explorer.js draws them): click one to choose it
    Array.from($("channels").children).forEach((figure, k) => {
      figure.classList.toggle("has-panel", shown.includes(k));
      figure.classList.toggle("chosen", k === state.channel);
      figure.onclick = shown.includes(k) ? () => choose(k) : null;
    });

    const tests = index.tests;
    const thumb = (tile, size) => view.spriteTile(tests.sprite, tile, size, size);
    const positionOf = (tile) => index.images.findIndex((im) => im.index === tests.indices[tile]);
    const follow = (tile) => {
      const pos = positionOf(tile);
      if (pos >= 0) { picked = null; view.select({ image: pos }); } else { picked = tile; view.select({}); }
    };

    const built = [state.run, layer.row, state.channel, picked, score.asked].join("|");
    if (drawn === built) {
      Array.from($("channel-top").children).forEach((c) => {
        c.classList.toggle("selected", positionOf(Number(c.dataset.tile)) === state.image);
      });
      return;
    }
    drawn = built;
    const strip = layer.channels.map((c, k) => {
      const canvas = view.spriteTile(layer.synth, k, 48, 48);
      canvas.className = (c.index === state.channel ? "selected" : "") + (c.dead ? " dead" : "");
      canvas.dataset.channel = String(c.index);
      canvas.title = `channel ${c.index}: fires on ${(100 * c.fires).toFixed(1)} % of positions${c.dead ? " (dead)" : ""}`;
      canvas.onclick = () => choose(c.index);
      return canvas;
    });
    const field = layer.field ? `${layer.field.join("×")}` : "unknown";
    const facts = [
      `fires on ${(100 * ch.fires).toFixed(1)} % of its positions${ch.dead ? ": dead (never positive)" : ""}`,
      `synthesised image ${ch.value.toFixed(3)} against the best test image ${ch.values[0].toFixed(3)}` +
        (ch.value >= ch.values[0] ? " (beats it)" : ""),
      `effective field ${ch.width.join("×")} pixels (95 % of the gradient) inside the theoretical ${field}`,
    ];
    const tops = ch.top.map((tile, k) => {
      const c = thumb(tile, 56);
      const pos = positionOf(tile);
      c.className = pos >= 0 && pos === state.image ? "selected" : "";
      c.dataset.tile = String(tile);
      c.title = `test image ${tests.indices[tile]} (${index.classes[tests.labels[tile]]}): ${ch.values[k]}` +
        (pos >= 0 ? " · click: it flows through" : " · click: shown here");
      c.onclick = () => follow(tile);
      return c;
    });
    const big = [
      element("figure", {}, [view.spriteTile(layer.synth, at, 112, 112), element("figcaption", { textContent: "synthesised" })]),
      element("figure", {}, [view.spriteTile(layer.erf, at, 112, 112), element("figcaption", { textContent: "effective field" })]),
    ];
    if (picked !== null) {
      big.push(element("figure", { id: "channel-picked" }, [thumb(picked, 112), element("figcaption", {
        textContent: `test image ${tests.indices[picked]} (${index.classes[tests.labels[picked]]}), not among the explorer's images`,
      })]));
    }
    box.replaceChildren(
      element("h2", { textContent: `What channel ${ch.index} of ${layer.name} looks for` }),
      element("div", { className: "note", textContent: `the ${data.cap} channels that fire most often of each convolution; ` +
        `top images from ${data.images.toLocaleString("en-US")} test images` }),
      element("div", { id: "channel-strip", className: "strip" }, strip),
      element("div", { id: "channel-big" }, big),
      element("ul", { className: "facts" }, facts.map((t) => element("li", { textContent: t }))),
      element("div", { textContent: "Its top test images (the quiz's references):" }),
      element("div", { id: "channel-top", className: "strip" }, tops),
      quiz(view, data, layer, ch, thumb),
    );
    // a sprite still loading draws blank tiles: build again on the render its arrival calls
    if (![tests.sprite, layer.synth, layer.erf].every((sp) => sp.files.every((f) => view.picture(f).complete))) drawn = null;
  });

  function quiz(view, data, layer, ch, thumb) {
    const { element } = view;
    const key = `${view.state.run}/${layer.name}/${ch.index}`;
    const order = strongFirst(key) ? [ch.strong, ch.weak] : [ch.weak, ch.strong];
    const answered = score.answers[key];
    const buttons = order.map((tile, k) => {
      const b = element("button", { type: "button", className: "query", dataset: { query: String(k) } }, [thumb(tile, 84)]);
      if (answered !== undefined) {
        b.disabled = true;
        b.className += (tile === ch.strong ? " strong" : " weak") + (answered === k ? " picked" : "");
      }
      b.onclick = () => {
        if (score.answers[key] !== undefined) return;
        score.answers[key] = k;
        score.asked += 1;
        if (tile === ch.strong) score.right += 1;
        view.select({});
      };
      return b;
    });
    const verdict = answered === undefined ? "Which of the two excites this channel more? Click it."
      : (order[answered] === ch.strong ? "Right: " : "Wrong: ") + "the green one is its next strongest test image, the other its weakest.";
    const pct = (x) => (100 * x).toFixed(0) + " %";
    return element("div", { id: "quiz" }, [
      element("h2", { textContent: "Quiz: which one excites it more?" }),
      element("div", { id: "quiz-queries" }, buttons),
      element("div", { id: "quiz-verdict", textContent: verdict }),
      element("div", { id: "quiz-score" }, [`class score: ${score.right} of ${score.asked}` +
        (score.asked ? ` (${pct(score.right / score.asked)}) ` : " "),
      element("button", { type: "button", id: "quiz-reset", textContent: "new class", title: "forget every answer",
        onclick: () => { score.asked = 0; score.right = 0; score.answers = {}; view.select({}); } })]),
      element("div", { className: "note", textContent: `archlab's own answer (pick the query more like the references, ` +
        `by mean cosine similarity of the pixels): ${pct(data.proxy)} of ${data.counted} channels. ` +
        "People, on ImageNet: 92 % from natural reference images, 82 % from synthesised ones (Borowski et al., 2021)." }),
    ]);
  }
})();
