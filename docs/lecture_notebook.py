"""Write ``examples/lecture.ipynb``: the lecture's CNN from shapes to confusion, in Jupyter.

    python docs/lecture_notebook.py          # (re)write the notebook, without outputs
    python docs/lecture_notebook.py --check  # exit 1 when the notebook is not this script's

The notebook is kept as this script's output so that its cells are reviewed as code;
tests/test_lecture_notebook.py executes it in a real Jupyter kernel (nbclient) and checks
every output. A code cell's ``archlab.figures`` metadata is how many pictures it must show
(each report that draws itself shows its picture once, in its HTML, or a returned Figure
shows once as a PNG): a figure shown twice, or not at all, fails the test.
"""

from __future__ import annotations

import sys
from pathlib import Path

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "lecture.ipynb"

# (kind, source, figures): "md" cells are text; "code" cells say how many pictures they show
CELLS: list[tuple[str, str, int]] = [
    (
        "md",
        """\
# The lecture's CNN, from shapes to confusion

The lecture trains two networks on Fashion-MNIST: a fully connected DNN and a small CNN.
This notebook takes the CNN apart with `archlab`, one question per cell: what shape does
each layer produce, where are the parameters, what did training do, what did the first
layer learn, what does the network look at, where does it go wrong, and what did the
convolutions buy over the DNN.

Every answer is a *report*: it renders itself here (a table, and a picture where a picture
is the answer), `.plot()` returns its matplotlib figure, `.save("name.png")` writes it
(or `.svg`, `.json`, `.txt`, `.html`), and `print()` gives what the command line prints.""",
        0,
    ),
    (
        "code",
        """\
import archlab

RUNS = "runs"  # where trained runs are kept (the same folder `archlab train` writes)""",
        0,
    ),
    (
        "md",
        """\
## 1. Shapes: 28×28, not 784×784

Every row is one layer, in the order `forward` calls it; shape-changing layers show their
formula with the numbers filled in. The trace is checked against a real forward pass.""",
        0,
    ),
    ("code", 'shapes = archlab.trace_shapes("cnn")\nshapes', 0),
    (
        "md",
        """\
The side of the feature map, layer by layer: padding 1 keeps 28, each 2×2 pooling halves
it, the unpadded 3×3 convolution trims one pixel on each side.""",
        0,
    ),
    ("code", "shapes.plot()", 1),
    (
        "md",
        """\
*What if* layer2's convolution were padded too? `overrides` rebuilds one layer with one
argument changed; the chain no longer fits, and the diagnosis says where and why.""",
        0,
    ),
    ("code", 'archlab.trace_shapes("cnn", overrides=["layer2.0.padding=1"])', 0),
    (
        "md",
        """\
## 2. Parameters and arithmetic

`fc1` holds almost all the weights; the convolutions do most of the multiply-accumulates.""",
        0,
    ),
    ("code", 'params = archlab.count_params("cnn")\nparams', 0),
    ("code", "params.plot()", 1),
    (
        "md",
        """\
## 3. The picture a textbook would draw

Every box and number comes from the trace: feature maps to scale, kernels as windows on
the maps they read, the flatten, the fully connected layers.""",
        0,
    ),
    ("code", 'archlab.draw("cnn")', 1),
    (
        "md",
        """\
## 4. Training, one epoch

`train` returns a `Run`: the model, how its inputs were normalised, its history and its
test accuracy. `reuse=True` returns the run already trained with these settings instead
of training again, so this cell is quick the second time. A full run is five epochs
(`archlab train`); one is enough to look inside.""",
        0,
    ),
    (
        "code",
        """\
data = archlab.load_fashion_mnist()
cnn = archlab.train("cnn", runs=RUNS, data=data, epochs=1, reuse=True)
cnn""",
        0,
    ),
    ("code", "cnn.plot()", 1),
    (
        "md",
        """\
## 5. What the first layer learned

The 32 kernels of `layer1.0` on one colour scale centred at zero: red weights add the
pixel, blue ones subtract it; opposite signs on two sides make an edge detector.""",
        0,
    ),
    ("code", 'archlab.filters(cnn, "layer1.0")', 1),
    (
        "md",
        """\
## 6. What the two blocks make of one image

Test image 42 after each block: 32 maps of 14×14, then 64 maps of 6×6, the sizes the
trace predicted.""",
        0,
    ),
    ("code", "archlab.activations(cnn, 42, data=data)", 1),
    (
        "md",
        """\
## 7. Which pixels made it answer

Five attribution methods for the same image (Captum). `sanity=True` adds the
model-randomisation test: a map that survives destroying the weights is not showing what
the model learned.""",
        0,
    ),
    ("code", "archlab.explain(cnn, 42, data=data)", 1),
    (
        "md",
        """\
## 8. Where it goes wrong

One pass over the 10,000 test images: the confusion matrix, precision, recall and F1 per
class, the most confused pairs, and the most confident mistakes.""",
        0,
    ),
    ("code", "report = archlab.evaluate(cnn, data=data)\nreport", 2),
    (
        "md",
        """\
## 9. What the convolutions bought

The lecture's DNN, trained the same way, side by side with the CNN: parameters,
arithmetic, how each was trained, and accuracy overall and per class.""",
        0,
    ),
    (
        "code",
        """\
dnn = archlab.train("dnn", runs=RUNS, data=data, epochs=1, reuse=True)
archlab.compare([dnn, cnn], data=data)""",
        1,
    ),
    (
        "md",
        """Both runs' test accuracy on one slide: `.plot(ax)` draws a run into an axes you give it,
labelled by the run and its last accuracy, in the axes' next colour (`color=` and
`label=` choose them).""",
        0,
    ),
    (
        "code",
        """import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
dnn.plot(ax)
cnn.plot(ax)
plt.close(fig)  # shown once: as the cell's value
fig""",
        1,
    ),
    (
        "md",
        """## 10. How much of the image does one unit see?

One unit of `layer2`'s output reads a 10×10 patch of the 28×28 image (3×3 convolutions
and 2×2 pooling, twice), drawn over test image 42, a dress.""",
        0,
    ),
    ("code", 'archlab.draw_field(cnn, "layer2.3", unit=(1, 2), index=42, data=data)', 1),
]


def build():
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata.update(
        {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        }
    )
    for k, (kind, source, figures) in enumerate(CELLS):
        if kind == "md":
            cell = nbformat.v4.new_markdown_cell(source)
        else:
            cell = nbformat.v4.new_code_cell(source)
            cell.metadata["archlab"] = {"figures": figures}
        cell.id = f"cell-{k:02d}"  # stable ids: the file changes only when a cell does
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def text() -> str:
    import nbformat

    return nbformat.writes(build()) + "\n"


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        if NOTEBOOK.read_text(encoding="utf-8") != text():
            print(f"{NOTEBOOK} is stale: run python docs/lecture_notebook.py", file=sys.stderr)
            return 1
        return 0
    NOTEBOOK.write_text(text(), encoding="utf-8")
    print(f"wrote {NOTEBOOK}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
