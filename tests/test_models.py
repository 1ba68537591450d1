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


class _InPlace(torch.nn.Module):
    """A conv net as people write it: one in-place ReLU called after each convolution
    and the lecture's ``x.view(x.size(0), -1)`` (which fails on a channels-last map)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(4, 6, 3, padding=1, stride=2)
        self.relu = torch.nn.ReLU(inplace=True)
        self.fc = torch.nn.Linear(6 * 14 * 14, 10)

    def forward(self, x):
        x = self.relu(self.conv2(self.relu(self.conv(x))))
        return self.fc(x.view(x.size(0), -1))


def test_a_layers_record_is_its_output_before_an_in_place_op_after_it():
    """An outside test found the conv rows holding their outputs after the in-place ReLU
    (no value below 0): each row keeps its own output, as a hook's copy sees it."""
    from archlab.trace.record import outputs_by_name

    torch.manual_seed(0)
    model = _InPlace().eval()
    x = torch.randn(5, 1, 28, 28)
    found = outputs_by_name(model, x)
    first: dict[str, torch.Tensor] = {}
    for n, out in _leaf_calls(model, x):
        first.setdefault(n, out)
    assert found.keys() == first.keys() == {"conv", "relu", "conv2", "fc"}
    assert float(found["conv"].min()) < 0 and float(found["conv2"].min()) < 0
    for n, out in first.items():
        torch.testing.assert_close(found[n], out, rtol=1e-5, atol=1e-6, msg=n)


def test_the_explorers_channel_statistics_are_the_layers_outputs():
    """explorer.panels.conv_stats on the same net: each convolution's mean per image and
    channel and its count of positive units, as copies taken by hooks give them (its own
    hooks once returned the stored tensor, which replaced the layer's output)."""
    from archlab.explorer.panels import conv_stats

    torch.manual_seed(0)
    model = _InPlace().eval()
    images = torch.randint(0, 256, (7, 28, 28), dtype=torch.uint8)
    stats = conv_stats(model, images, None, ["conv", "conv2"])
    x = images.float().div(255).unsqueeze(1)
    first: dict[str, torch.Tensor] = {}
    for n, out in _leaf_calls(model, x):
        first.setdefault(n, out)
    for n in ("conv", "conv2"):
        means, positive = stats[n]
        flat = first[n].flatten(2)
        torch.testing.assert_close(means, flat.mean(2), rtol=1e-5, atol=1e-6, msg=n)
        assert positive.tolist() == (flat > 0).sum((0, 2)).tolist()


def test_a_captured_point_keeps_the_value_it_had_there():
    """archlab.analysis.features.capture (the activations' points): the conv's output as
    it left the conv, not as the in-place ReLU after it left it."""
    from archlab.analysis.features import capture

    torch.manual_seed(0)
    model = _InPlace().eval()
    x = torch.randn(2, 1, 28, 28)
    with capture(model, [("conv", "output", "c"), ("fc", "input", "f")]) as got, torch.no_grad():
        model(x)
    torch.testing.assert_close(got["c"], model.conv(x))
    assert float(got["c"].min()) < 0


@pytest.mark.parametrize("name", ["", " ", "a:b", "a@b", "my net", "cnn+x", "dnn"])
def test_a_name_no_command_can_take_is_refused_at_registration(name):
    """register_model('', '') and 'a:b' were accepted, 'dnn' twice a plain ValueError."""
    with pytest.raises(archlab.ArchlabError):
        archlab.register_model(name, "a test model")(lambda: torch.nn.Flatten())
    assert "" not in archlab.list_models() and "a:b" not in archlab.list_models()
