import copy

import pytest
import torch

import archlab
from archlab.analysis import explain as E
from archlab.analysis.features import capture
from archlab.errors import ArchlabError
from archlab.training.train import train

from .synthetic import learnable_dataset

QUIET = {"log": lambda line: None, "progress": False}


@pytest.fixture(scope="module")
def tiny():
    return learnable_dataset()


@pytest.fixture(scope="module")
def runs(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    for name in ("dnn", "cnn"):
        train(name, data=tiny, runs=out, epochs=3, batch_size=50, log_every=36, **QUIET)
    return out


def _no_hooks(model):
    return all(
        not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks
        for m in model.modules()
    )


@pytest.mark.parametrize("name", ["cnn", "dnn"])
def test_attributions_have_the_input_shape_and_leave_the_model_alone(runs, tiny, name):
    run = archlab.load_run(name, runs=runs)
    model = run.model
    model.train()  # explain must switch to eval and back
    before = {k: v.clone() for k, v in model.state_dict().items()}
    e = archlab.explain(run, 3, data=tiny)
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert _no_hooks(model)
    assert all(p.grad is None for p in model.parameters())
    for a in e.attributions:
        assert a.map.shape == (28, 28) and torch.isfinite(a.map).all(), a.method
    methods = [a.method for a in e.attributions]
    if name == "cnn":
        assert methods == list(E.METHODS)
        gradcam = e.attributions[-1]
        assert gradcam.native.shape == (12, 12) and "layer2.2" in gradcam.title
    else:
        assert "gradcam" not in methods and "no convolution" in e.skipped["gradcam"]
    ig = next(a for a in e.attributions if a.method == "ig")
    assert "baseline: black image" in ig.settings and ig.delta is not None


def test_explanation_verdict_and_probabilities(runs, tiny):
    e = archlab.explain("cnn", 5, runs=str(runs), data=tiny, methods="saliency")
    assert e.probs.sum().item() == pytest.approx(1.0, abs=1e-5)
    assert e.verdict.startswith(f"true: {e.classes[int(tiny.test_labels[5])]} · predicted: ")
    assert len(e.top(3)) == 3


def test_last_conv_names_the_last_convolution_and_does_not_apply_without_one(runs, tiny):
    """--layer last-conv on a net without convolutions: Grad-CAM does not apply, as with
    the default layer (it was an 'archlab BUG' TypeError, found by an outside test)."""
    cnn = archlab.explain("cnn", 3, runs=str(runs), data=tiny, methods="gradcam", layer="last-conv")
    assert cnn.attributions[0].title == "Grad-CAM on layer2.0"
    dnn = archlab.explain("dnn", 3, runs=str(runs), data=tiny, methods="gradcam", layer="last-conv")
    assert dnn.attributions == [] and "no convolution" in dnn.skipped["gradcam"]


def test_sanity_check_randomised_maps_correlate_less(runs, tiny):
    e = archlab.explain(
        "cnn", 7, runs=str(runs), data=tiny, methods="saliency,gradcam", sanity=True
    )
    s = e.sanity
    assert s.steps[0] == "fc3" and s.steps[-1] == "layer1.0"
    # destroying the weights must lower the map's rank correlation with the trained one
    assert s.rho["saliency"][-1] < 0.9
    assert set(s.maps) == {"saliency", "gradcam"}


@pytest.mark.parametrize("seed", range(5))
def test_spearman_agrees_with_scipy(seed):
    """scipy's spearmanr, not archlab's own code, is the reference (no ties: continuous
    random values, where ranking ties by position changes nothing)."""
    from scipy.stats import spearmanr

    g = torch.Generator().manual_seed(seed)
    a = torch.rand(12, 12, generator=g)
    b = a + torch.rand(12, 12, generator=g) * seed  # from identical to nearly unrelated
    expected = spearmanr(a.flatten().numpy(), b.flatten().numpy()).statistic
    assert E.spearman(a, b) == pytest.approx(expected, abs=1e-12)


def test_spearman_on_small_cases():
    a = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert E.spearman(a, a * 10) == pytest.approx(1.0)
    assert E.spearman(a, -a) == pytest.approx(-1.0)
    assert E.spearman(a, torch.tensor([2.0, 1.0, 4.0, 3.0])) == pytest.approx(0.6)


def test_in_place_relu_is_handled_and_restored():
    model = torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(784, 16),
        torch.nn.ReLU(inplace=True),
        torch.nn.Linear(16, 10),
    )
    e = E.explain_image(model, torch.zeros(28, 28, dtype=torch.uint8), methods="saliency")
    assert e.attributions[0].map.shape == (28, 28)
    assert model[2].inplace


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"methods": "saliency,magic"}, "unknown method 'magic'"),
        ({"target": "hat"}, "--target 'hat'"),
        ({"target": "12"}, "a class index is 0-9"),
    ],
)
def test_bad_explain_input(runs, tiny, kw, message):
    with pytest.raises(ArchlabError, match=message):
        archlab.explain("cnn", 0, runs=str(runs), data=tiny, **kw)


def test_index_out_of_range(runs, tiny):
    with pytest.raises(ArchlabError, match="numbered 0-199"):
        archlab.explain("cnn", 200, runs=str(runs), data=tiny)


def test_filters(runs):
    run = archlab.load_run("cnn", runs=runs)
    first = archlab.filters(run)
    assert first.layer == "layer1.0" and first.weights.shape == (32, 1, 3, 3)
    assert torch.equal(first.weights, run.model.layer1[0].weight)
    assert archlab.filters("cnn", "layer2.0", runs=runs).weights.shape == (64, 32, 3, 3)
    with pytest.raises(ArchlabError, match=r"choose from layer1\.0, layer2\.0"):
        archlab.filters(run, "fc1")
    with pytest.raises(ArchlabError, match="has no convolution"):
        archlab.filters("dnn", runs=runs)
    assert "32×1 kernels of 3×3" in str(first) and len(first.plot().axes) == 2


def test_activation_shapes_match_the_shape_trace(runs, tiny):
    run = archlab.load_run("cnn", runs=runs)
    model = run.model
    acts = archlab.activations(run, 0, data=tiny).maps
    trace = {r.name: r.output for r in archlab.trace_shapes("cnn").layers}
    assert acts["layer1"].shape == trace["layer1.3"] == (32, 14, 14)
    assert acts["layer2"].shape == trace["layer2.3"] == (64, 6, 6)
    dnn = archlab.load_run("dnn", runs=runs).model
    acts = archlab.activations("dnn", 0, runs=runs, data=tiny).maps
    assert [tuple(a.shape) for a in acts.values()] == [(256,), (128,)]
    assert all((a >= 0).all() for a in acts.values())  # after ReLU
    assert _no_hooks(model) and _no_hooks(dnn)


def test_capture_removes_hooks_even_on_error():
    model = archlab.create_model("cnn")
    with pytest.raises(RuntimeError), capture(model, [("layer1", "output", "x")]):
        model(torch.zeros(1, 3, 28, 28))  # wrong channel count
    assert _no_hooks(model)


class _BareHead(torch.nn.Module):
    """Parameters a layer's reset_parameters never reaches: attention's Q/K/V projection
    (reset by ``_reset_parameters``), a class token and a head written as bare
    ``nn.Parameter``s of the model itself, a vector that a custom layer never resets."""

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Linear(28, 16)
        self.attn = torch.nn.MultiheadAttention(16, 2, batch_first=True)
        self.cls = torch.nn.Parameter(torch.randn(1, 1, 16))
        self.w = torch.nn.Parameter(torch.randn(16, 10))
        self.scale = torch.nn.Module()
        self.scale.g = torch.nn.Parameter(torch.linspace(0.5, 1.5, 10))

    def forward(self, x):
        t = self.embed(x[:, 0])
        t = torch.cat([self.cls.expand(len(t), -1, -1), t], 1)
        return self.attn(t, t, t)[0][:, 0] @ self.w * self.scale.g


def test_the_fully_randomised_model_redraws_every_parameter():
    """The sanity check's cascade reaches every trained parameter, not only the layers
    with a reset_parameters (an outside test found attention's in_proj and a bare head
    kept): each step changes its own parameters and, at the end, every one has changed."""
    from archlab.analysis._attribution import _randomisation_steps
    from archlab.analysis.faithfulness import _fully_randomised

    model = _BareHead()
    with torch.no_grad():  # "trained": no parameter at its initial value (biases at 0)
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    trained = {n: p.detach().clone() for n, p in model.named_parameters()}
    randomised = _fully_randomised(model)
    kept = [n for n, p in randomised.named_parameters() if torch.equal(p, trained[n])]
    assert kept == []
    copy_of = copy.deepcopy(model)
    steps = _randomisation_steps(copy_of)
    assert [n for n, _ in steps] == ["scale", "attn.out_proj", "attn", "embed", "_BareHead"]
    before = {n: p.detach().clone() for n, p in copy_of.named_parameters()}
    steps[2][1]()  # the attention's own: in_proj, not out_proj
    changed = {n for n, p in copy_of.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {"attn.in_proj_weight", "attn.in_proj_bias", "attn.out_proj.bias"}
    # a vector without an initialiser keeps its trained values' scale, not their order
    g = randomised.scale.g.detach()
    assert not torch.equal(g, trained["scale.g"]) and 0.3 < float(g.mean()) < 1.7


def test_grad_cams_default_layer_is_described_as_it_is():
    """A branch's conv before a torch.cat was captioned 'after its norm and activation'
    (outside test): the caption names what the block ends in and the operations after it
    that Grad-CAM cannot hook."""

    class Branches(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.b1 = torch.nn.Conv2d(1, 4, 3)
            self.b2 = torch.nn.Conv2d(1, 4, 3)
            self.head = torch.nn.Linear(8, 10)

        def forward(self, x):
            return self.head(torch.cat([self.b1(x), self.b2(x)], 1).mean((2, 3)))

    name, why = E.gradcam_layer(Branches())
    assert name == "b2" and "(it ends in Conv2d)" in why and "torch.cat(1)" in why
    name, why = E.gradcam_layer(archlab.create_model("cnn"))
    assert name == "layer2.2" and why.endswith("(it ends in ReLU)")


@pytest.mark.parametrize(
    ("kwargs", "said"),
    [
        ({"image": torch.zeros(5)}, "image= is 5: give one grey image, 28×28"),
        ({"image": torch.zeros(2, 28, 28)}, "image= is 2×28×28: give one grey image"),
        ({"image": torch.zeros(1, 14, 14)}, "image= is 1×14×14: give one grey image"),
        ({"image": torch.zeros(28, 28), "label": 12}, "label=12: give the image's class, 0-9"),
    ],
)
def test_an_image_given_is_one_grey_image_with_a_class(runs, kwargs, said):
    """A (2, 28, 28) stack was explained as two rows of the DNN; a wrong shape or label
    ended in torch's own error (outside tests)."""
    with pytest.raises(ArchlabError, match=said):
        archlab.explain("dnn", runs=str(runs), methods="saliency", **kwargs)


def test_activations_take_an_image_of_any_size_for_a_model_in_hand():
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU())
    acts = archlab.activations(net, image=torch.zeros(1, 14, 14, dtype=torch.uint8), layers=None)
    assert acts is not None
    with pytest.raises(ArchlabError, match="image= is 3×14×14"):
        archlab.activations(net, image=torch.zeros(3, 14, 14, dtype=torch.uint8))
