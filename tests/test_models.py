import pytest
import torch

import archlab
from archlab.models import GROUPS

EXPECTED_PARAMS = {"dnn": 235_146, "cnn": 1_475_338}


def test_registry_lists_the_lecture_models():
    assert archlab.list_models("lecture") == ["cnn", "dnn"]


def test_every_model_belongs_to_one_group():
    groups = [archlab.list_models(group) for group in GROUPS]
    assert sorted(name for group in groups for name in group) == archlab.list_models()


@pytest.mark.parametrize("name", archlab.list_models())
def test_every_model_builds_and_classifies_a_batch(name):
    model = archlab.create_model(name).eval()
    assert model(torch.zeros(3, *model.input_shape)).shape == (3, 10)
    assert archlab.models.model_description(name)


@pytest.mark.parametrize("name", archlab.list_models("lecture"))
def test_parameter_counts_are_exact(name):
    model = archlab.create_model(name)
    assert sum(p.numel() for p in model.parameters()) == EXPECTED_PARAMS[name]


def test_cnn_layers_are_the_lectures():
    cnn = archlab.create_model("cnn")
    assert cnn.fc1.in_features == 2304 == 64 * 6 * 6
    assert type(cnn.drop).__name__ == "Dropout"  # not Dropout2d on a flat tensor
    assert cnn.layer1[0].padding == (1, 1) and cnn.layer2[0].padding == (0, 0)


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(
        archlab.ArchlabError, match="unknown model 'resnet50'; registered: cnn, dnn, lenet5"
    ):
        archlab.create_model("resnet50")


def _leaf_calls(model: torch.nn.Module, x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """Each leaf layer's call as forward hooks see it: its name and its output."""
    names = {m: n for n, m in model.named_modules()}
    calls = []

    def keep(module, args, output):
        calls.append((names[module], output.detach().clone()))

    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    handles = [m.register_forward_hook(keep) for m in leaves]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return calls


@pytest.mark.parametrize("name", archlab.list_models())
def test_the_trace_records_every_layer_hooks_see(name):
    model = archlab.create_model(name).eval()
    report = archlab.trace_shapes(model)
    rows = [(r.name, r.output) for r in report.layers if not r.functional]
    seen = _leaf_calls(model, torch.zeros(1, *model.input_shape))
    assert rows == [(n, tuple(out.shape[1:])) for n, out in seen]


@pytest.mark.parametrize("name", archlab.list_models())
def test_each_rows_outputs_are_the_forward_passes(name):
    from archlab.trace.record import outputs_by_name

    torch.manual_seed(0)
    model = archlab.create_model(name).eval()
    x = torch.randn(5, *model.input_shape)  # an odd count: the tracer's pairs are padded
    found = outputs_by_name(model, x)
    first: dict[str, torch.Tensor] = {}
    for n, out in _leaf_calls(model, x):
        first.setdefault(n, out)
    assert found.keys() == first.keys()
    for n, out in first.items():
        torch.testing.assert_close(found[n], out, rtol=1e-5, atol=1e-6, msg=n)


def _gradcam_by_hooks(model: torch.nn.Module, shape) -> str | None:
    """Grad-CAM's layer by its definition, from forward hooks on every module: of those
    that finish after the last convolution with a map of its size, the last to finish."""
    names = {m: n for n, m in model.named_modules()}
    finished = []

    def record(module, args, output):
        if isinstance(output, torch.Tensor):
            conv = isinstance(module, torch.nn.Conv2d)
            finished.append((names[module], tuple(output.shape), conv))

    handles = [m.register_forward_hook(record) for n, m in model.named_modules() if n]
    with torch.no_grad():
        model.eval()(torch.zeros(1, *shape))
    for h in handles:
        h.remove()
    convs = [i for i, (_, _, conv) in enumerate(finished) if conv]
    if not convs:
        return None
    size = finished[convs[-1]][1][2:]
    same = [n for n, s, _ in finished[convs[-1] :] if len(s) == 4 and s[2:] == size]
    return same[-1]


class _ReluInForward(torch.nn.Module):
    """A convolution whose activation is written in ``forward`` (F.relu, no module)."""

    input_shape = (1, 28, 28)

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3)
        self.pool = torch.nn.MaxPool2d(2)
        self.fc = torch.nn.Linear(4 * 13 * 13, 10)

    def forward(self, x):
        return self.fc(self.pool(torch.relu(self.conv(x))).flatten(1))


@pytest.mark.parametrize("name", [*archlab.list_models(), "relu-in-forward"])
def test_gradcam_layer_is_the_last_block_by_its_definition(name):
    from archlab.analysis.explain import gradcam_layer

    model = _ReluInForward() if name == "relu-in-forward" else archlab.create_model(name)
    found = gradcam_layer(model, model.input_shape)
    assert (found[0] if found else None) == _gradcam_by_hooks(model, model.input_shape)
