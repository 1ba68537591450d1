"""archlab/training/speed.py and the fast recipe: augmentation, flip TTA, the EMA, the
recipe's defaults, the speednet and --target's stop rule."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torchinfo import summary

import archlab
from archlab.cli import main
from archlab.training.recipes import RECIPES, TrainConfig, TrainSettings, warmup_lr
from archlab.training.speed import (
    WeightAverage,
    augment_epoch,
    crop_and_flip,
    flip_tta_probabilities,
    flips,
)
from tests.synthetic import learnable_dataset

QUIET = {"log": lambda line: None, "progress": False, "figures": False}


@pytest.fixture(scope="module")
def tiny():
    return learnable_dataset(n_train=300, n_test=100)


def _reference_crop(image: torch.Tensor, dy: int, dx: int, mirror: bool) -> torch.Tensor:
    """RandomCrop(28, padding=p) at offset (p + dy, p + dx), written out by slicing."""
    h, w = image.shape
    p = max(abs(dy), abs(dx))
    padded = torch.zeros(h + 2 * p, w + 2 * p, dtype=image.dtype)
    padded[p : p + h, p : p + w] = image
    if mirror:
        padded = padded.flip(-1)  # mirroring then shifting by dx = shifting by −dx, mirrored
        dx = -dx
    return padded[p + dy : p + dy + h, p + dx : p + dx + w]


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 6),
    pad=st.integers(0, 4),
    seed=st.integers(0, 2**31),
)
def test_crop_and_flip_is_a_shifted_mirrored_copy_of_each_image(n, pad, seed):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8)
    moves = torch.randint(-pad, pad + 1, (n, 2), generator=g)
    mirror = torch.rand(n, generator=g) < 0.5
    out = crop_and_flip(images, moves, mirror)
    assert out.shape == images.shape and out.dtype == images.dtype
    for i in range(n):  # image i stays image i: its label still applies
        dy, dx = moves[i].tolist()
        assert torch.equal(out[i], _reference_crop(images[i], dy, dx, bool(mirror[i])))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10**6), epoch=st.integers(0, 50), pad=st.integers(0, 3))
def test_an_epochs_augmentation_keeps_shapes_pixels_and_the_images_order(seed, epoch, pad):
    images = learnable_dataset(n_train=16, n_test=1, seed=seed % 100).train_images
    out = augment_epoch(images, seed, epoch, pad)
    assert out.shape == images.shape and out.dtype == torch.uint8
    if pad == 0:  # flips only: each image or its mirror image, in place
        mirrored = flips(len(images), seed, epoch)
        expected = torch.where(mirrored[:, None, None], images.flip(-1), images)
        assert torch.equal(out, expected)
    # a shift only drops pixels and fills with black: never more ink than the image had
    assert (out.sum((1, 2)) <= images.sum((1, 2), dtype=torch.int64)).all()


def test_flips_alternate_every_epoch():
    first, second, third = (flips(1000, 3, e) for e in range(3))
    assert torch.equal(first, ~second) and torch.equal(first, third)
    assert 400 < int(first.sum()) < 600  # about half in the first epoch
    assert not torch.equal(flips(1000, 4, 0), first)  # another seed, other flips


def test_flip_tta_is_the_mean_of_the_two_passes_probabilities():
    torch.manual_seed(0)
    model = archlab.create_model("speednet").eval()
    images = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8)
    mean, std = 0.2860, 0.3530
    got = flip_tta_probabilities(model, images, (mean, std))
    x = (images.float() / 255 - mean) / std
    with torch.no_grad():
        plain = model(x[:, None]).softmax(1)
        mirrored = model(x.flip(-1)[:, None]).softmax(1)
    torch.testing.assert_close(got, (plain + mirrored) / 2, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(plain, mirrored)  # the flip does change the answer


def test_the_weight_average_follows_its_formula():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    start = {k: v.clone() for k, v in model.state_dict().items()}
    average = WeightAverage(model, decay=0.9)
    with torch.no_grad():
        model[0].weight.add_(1.0)
        model(torch.randn(4, 3))  # moves BatchNorm's running statistics
    average.update(model)  # the first update's decay: min(0.9, 1/10)
    now = model.state_dict()
    for key, value in average.state.items():
        if value.is_floating_point():
            torch.testing.assert_close(value, 0.1 * start[key] + 0.9 * now[key])
        else:
            assert torch.equal(value, now[key])  # the batch count is copied
    with average.swapped_in(model):
        torch.testing.assert_close(model[0].weight, average.state["0.weight"])
    torch.testing.assert_close(model[0].weight, now["0.weight"])  # its own weights back
    before = average.state["0.weight"].clone()
    average.updates = 1000  # long after the warm-up: the decay itself
    average.update(model)
    torch.testing.assert_close(average.state["0.weight"], 0.9 * before + 0.1 * now["0.weight"])


def test_warmup_rises_then_falls_linearly_to_zero():
    rates = [warmup_lr(3e-3, i, 1000) for i in range(1001)]
    assert max(rates) == pytest.approx(3e-3) and rates.index(max(rates)) == 199
    assert rates[0] == pytest.approx(3e-3 / 200) and rates[1000] == 0.0
    assert rates[600] == pytest.approx(3e-3 * 400 / 800)


def test_the_fast_recipe_has_its_own_defaults_and_the_others_keep_theirs():
    fast = TrainSettings(recipe="fast").config("x")
    assert (fast.epochs, fast.batch_size, fast.lr) == (4, 200, 3e-3)
    assert TrainSettings(recipe="fast-long").config("x").epochs == 20
    assert TrainSettings(recipe="fast", epochs=3).config("x").epochs == 3
    for name in ("careful", "lecture"):
        assert TrainSettings(recipe=name).config("x") == TrainConfig("x", recipe=name)
        assert RECIPES[name].pad is None and RECIPES[name].ema is None
        assert not RECIPES[name].tta and RECIPES[name].label_smoothing == 0
        assert not RECIPES[name].whiten  # the lecture's recipes start at random


def test_a_target_holds_out_5000_images_unless_told():
    assert TrainSettings(target=93).config("x").validation == 5_000
    assert TrainSettings(target=93, validation=1_000).config("x").validation == 1_000
    assert TrainSettings().config("x").validation == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--target", "93", "--validation", "0"], "--target stops on held-out validation"),
        (["--target", "0"], "--target 0.0: give an accuracy in percent"),
        (["--target", "101"], "--target 101.0: give an accuracy in percent"),
        (["--target", "93", "--target-confidence", "0.4"], "--target-confidence 0.4: give"),
        (["--target", "93", "--target-confidence", "1"], "--target-confidence 1.0: give"),
        (["--target", "93", "--target-confidence", "nan"], "--target-confidence nan: give"),
        (["--target-confidence", "0.9"], "--target-confidence says how sure a --target run"),
    ],
)
def test_bad_target_combinations_are_one_line(capsys, tmp_path, argv, message):
    assert main(["train", "dnn", *argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_the_fast_recipe_is_deterministic_for_a_seed(tiny, tmp_path):
    kw = {"recipe": "fast", "epochs": 2, "batch_size": 50, "seed": 3, **QUIET}
    a = archlab.train("speednet", data=tiny, runs=tmp_path / "a", **kw)
    b = archlab.train("speednet", data=tiny, runs=tmp_path / "b", **kw)
    c = archlab.train("speednet", data=tiny, runs=tmp_path / "c", **{**kw, "seed": 4})
    for (key, x), y in zip(
        a.model.state_dict().items(), b.model.state_dict().values(), strict=True
    ):
        assert torch.equal(x, y), key
    assert not torch.equal(a.model.stage1[0].weight, c.model.stage1[0].weight)


def _noisy_validation(tiny: archlab.FashionMNIST) -> archlab.FashionMNIST:
    """A fifth of the last 100 training labels (the validation images) wrong: the
    accuracy on them climbs, and never reaches 99.9 %."""
    labels = tiny.train_labels.clone()
    labels[-100::5] = (labels[-100::5] + 1) % 10
    return archlab.FashionMNIST(tiny.train_images, labels, tiny.test_images, tiny.test_labels)


def test_target_stops_at_the_first_evaluation_that_reaches_it(tiny, tmp_path):
    tiny = _noisy_validation(tiny)
    kw = {"recipe": "fast", "epochs": 4, "batch_size": 25, "validation": 100, **QUIET}
    kw["lr"], kw["target_confidence"] = 1e-4, 0.5  # the plain rule: the reading itself
    full = archlab.train("speednet", data=tiny, runs=tmp_path / "full", target=99.9, **kw)
    points = full.history["validation"]
    assert [p["iteration"] for p in points] == list(range(4, 33, 4))  # 4 a half epoch
    # a target first reached after the first evaluation: the best so far, strictly
    best = 0.0
    chosen = None
    for k, p in enumerate(points):
        if k > 0 and p["accuracy"] > best:
            chosen = k
            break
        best = max(best, p["accuracy"])
    assert chosen is not None, [p["accuracy"] for p in points]
    target = 100 * points[chosen]["accuracy"]
    lines = []
    stopped = archlab.train(
        "speednet", data=tiny, runs=tmp_path / "stop", target=target - 1e-6,
        **{**kw, "log": lines.append},
    )  # fmt: skip
    assert stopped.iteration == points[chosen]["iteration"] and stopped.finished
    seen = [(p["iteration"], p["accuracy"]) for p in stopped.history["validation"]]
    assert seen == [(p["iteration"], p["accuracy"]) for p in points[: chosen + 1]]
    assert len(stopped.history["eval"]) == 1  # the test set, read once
    assert stopped.test_accuracy == stopped.history["eval"][0]["test_accuracy"]
    assert any(f"at iteration {stopped.iteration} (" in line for line in lines)


def test_the_default_stop_waits_until_the_lower_bound_reaches_the_target(tiny, tmp_path):
    tiny = _noisy_validation(tiny)
    kw = {"recipe": "fast", "epochs": 4, "batch_size": 25, "validation": 100, "lr": 1e-4}
    full = archlab.train("speednet", data=tiny, runs=tmp_path / "full", target=99.9, **kw, **QUIET)
    points = full.history["validation"]
    # Wilson's lower 90 % bound on 100 images, written out (z = 1.2816)
    z = 1.2815515655446004

    def bound(p: float) -> float:
        centre = p + z * z / 200
        spread = z * ((p * (1 - p) + z * z / 400) / 100) ** 0.5
        return 100 * (centre - spread) / (1 + z * z / 100)

    bounds = [bound(p["accuracy"]) for p in points]
    # a line that an earlier reading already passed (the plain rule would stop there)
    # and that the bound first passes at point k
    readings = [100 * p["accuracy"] for p in points]
    lines_at = {k: min(max(readings[:k]), bounds[k]) for k in range(1, len(points))}
    chosen = next(k for k, line in lines_at.items() if line > max(bounds[:k]))
    target = lines_at[chosen]
    lines = []
    stopped = archlab.train(
        "speednet", data=tiny, runs=tmp_path / "stop", target=target,
        **{**kw, **QUIET, "log": lines.append},
    )  # fmt: skip
    assert stopped.iteration == points[chosen]["iteration"]
    assert stopped.config.target_confidence == 0.9
    assert any("90% sure it reached" in line for line in lines)
    assert any(f"90% sure of ≥ {bounds[0]:.2f}%" in line for line in lines)


@pytest.mark.parametrize("confidence", [0.5, 0.6, 0.9, 0.95, 0.99])
@pytest.mark.parametrize(("k", "n"), [(0, 10), (93, 100), (4_650, 5_000), (5_000, 5_000)])
def test_the_lower_bound_is_scipys_wilson_interval(confidence, k, n):
    from scipy.stats import binomtest

    from archlab.training.stopping import lower_bound

    expected = binomtest(k, n).proportion_ci(2 * confidence - 1, method="wilson").low
    if confidence == 0.5:  # scipy refuses a zero-width interval: the reading itself
        expected = k / n
    assert lower_bound(k / n, n, confidence) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("n", "target", "confidence"),
    [(5_000, 93.0, 0.9), (5_000, 93.0, 0.5), (100, 80.0, 0.95), (1_000, 99.0, 0.99)],
)
def test_the_needed_reading_is_the_least_that_stops(n, target, confidence):
    from archlab.training.stopping import needed_reading, reached

    needed = needed_reading(n, target, confidence)
    k = round(needed * n)
    assert reached(k / n, n, target, confidence)
    assert not reached((k - 1) / n, n, target, confidence)
    assert needed_reading(10, 99.0, 0.9) is None  # 10 of 10 is not sure enough of 99 %


def test_a_target_run_says_its_stop_rule_first(tiny, tmp_path):
    lines = []
    kw = {"recipe": "fast", "epochs": 1, "batch_size": 50, "validation": 100, "target": 99.9}
    archlab.train("speednet", data=tiny, runs=tmp_path, **kw, **{**QUIET, "log": lines.append})
    rule = next(line for line in lines if "held-out images make it" in line)
    assert "100 held-out images make it 90% sure that the accuracy reached 99.9%" in rule
    assert "100 images can never make it that sure" in rule  # 100 of 100 is not enough
    assert any("did not make 90% sure of 99.9% on validation (best reading" in x for x in lines)


def test_an_old_target_checkpoint_keeps_the_plain_rule():
    old = {"model": "x", "recipe": "fast", "target": 93.0, "validation": 5000}
    assert TrainConfig.from_dict(old).target_confidence == 0.5
    assert TrainConfig.from_dict({"model": "x"}).target_confidence == 0.9
    assert TrainSettings(target=93).config("x").target_confidence == 0.9


def test_speednet_parameters_by_hand_and_by_torchinfo():
    def conv_bn(c_in: int, c_out: int) -> int:
        return 9 * c_in * c_out + 2 * c_out  # no bias: BatchNorm's weight and bias

    def linear(n_in: int, n_out: int) -> int:
        return n_in * n_out + n_out

    by_hand = conv_bn(1, 32) + conv_bn(32, 64) + conv_bn(64, 128)
    by_hand += linear(128 * 6 * 6, 256) + linear(256, 10)
    model = archlab.create_model("speednet")
    stats = summary(model, input_size=(1, 1, 28, 28), verbose=0, device="cpu")
    assert archlab.count_params("speednet").total_params == stats.total_params == by_hand
    assert by_hand == 1_275_370
    # multiply-accumulates: each conv's output pixels × 9 × in × out, then the Linears
    macs = 28 * 28 * 9 * 32 + 12 * 12 * 9 * 32 * 64 + 6 * 6 * 9 * 64 * 128
    macs += 4608 * 256 + 256 * 10
    # archlab counts a BatchNorm as one multiply-add per output value; torchinfo counts
    # BatchNorm's and the Linears' weights and biases once each
    norm = 32 * 14 * 14 + 64 * 6 * 6 + 128 * 6 * 6
    assert archlab.count_params("speednet").total_macs == macs + norm == 6_729_600
    assert stats.total_mult_adds == macs + 2 * (32 + 64 + 128) + 256 + 10


def test_speednet_traces_to_ten_scores():
    report = archlab.trace_shapes("speednet")
    assert report.ok and report.output_shape == (10,)
    by_name = {r.name: r.output for r in report.layers}
    assert by_name["stage1.0"] == (32, 28, 28) and by_name["stage1.1"] == (32, 14, 14)
    assert by_name["stage2.0"] == (64, 12, 12) and by_name["stage2.1"] == (64, 6, 6)
    assert by_name["stage3.2"] == (128, 6, 6) and by_name["head.0"] == (4608,)


def test_a_resumed_fast_run_equals_an_uninterrupted_one(tiny, tmp_path):
    # the EMA, the epoch's crops and flips and the schedule all come back on --resume
    kw = {"recipe": "fast", "epochs": 2, "batch_size": 50, **QUIET}
    whole = archlab.train("speednet", data=tiny, runs=tmp_path / "whole", **kw)
    archlab.train("speednet", data=tiny, runs=tmp_path / "part", max_iterations=7, **kw)
    resumed = archlab.train("speednet", data=tiny, runs=tmp_path / "part", resume=True, **QUIET)
    assert resumed.iteration == whole.iteration == 12
    for (key, x), y in zip(
        whole.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(x, y), key
    assert resumed.test_accuracy == whole.test_accuracy


@pytest.mark.realdata
def test_one_fast_epoch_of_speednet_learns_the_real_data(real_data, tmp_path):
    run = archlab.train("speednet", data=real_data, runs=tmp_path, recipe="fast", epochs=1, **QUIET)
    assert run.iteration == 300 and run.finished
    assert run.test_accuracy > 0.85  # seed 0: 88.59 % here


def test_the_ladder_figure_puts_each_rung_at_its_numbers():
    """archlab.viz.speedrun.plot_ladder: a row per rung in the ladder's order, its
    accuracy (mean ± std, each seed a dot) on the left and its seconds on the right, a rung
    that did not pay in red, a branch marked."""
    import matplotlib.colors as mcolors

    from archlab.viz.speedrun import plot_ladder

    rows = [
        {"rung": "lecture", "accuracy": [90.1, 0.2], "seconds": [57.0, 1.0], "pays": None},
        {
            "rung": "crops", "accuracy": [89.9, 0.3], "seconds": [61.0, 2.0], "pays": False,
            "branch": True, "accuracies": [89.6, 90.2],
        },
    ]  # fmt: skip
    fig = plot_ladder(rows)
    acc_ax, time_ax = fig.axes
    lines = [c.lines[0] for c in acc_ax.containers]
    assert [(float(x[0]), float(y[0])) for x, y in (ln.get_data() for ln in lines)] == [
        (90.1, 0.0),
        (89.9, 1.0),
    ]
    assert mcolors.same_color(lines[1].get_color(), "tab:red")
    seeds = [ln for ln in acc_ax.lines if ln.get_marker() == "."]
    assert [list(ln.get_xdata()) for ln in seeds] == [[], [89.6, 90.2]]
    assert [t.get_text() for t in acc_ax.get_yticklabels()] == ["lecture", "↳ crops"]
    assert acc_ax.yaxis_inverted()
    bars = list(time_ax.patches)
    assert [(b.get_width(), b.get_y() + b.get_height() / 2) for b in bars] == [
        (57.0, 0.0),
        (61.0, 1.0),
    ]
    assert mcolors.same_color(bars[1].get_facecolor()[:3], "tab:red")


def test_bf16_native_is_false_where_bfloat16_is_emulated(monkeypatch):
    from archlab.training import speed

    assert speed.bf16_native(torch.device("meta")) is False
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    assert speed.bf16_native(torch.device("cpu")) is False
    # on CUDA: only a GPU that computes bfloat16 itself, not one that emulates it
    asked = []

    def supported(including_emulation=True):
        asked.append(including_emulation)
        return including_emulation

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", supported)
    assert speed.bf16_native(torch.device("cuda")) is False and asked == [False]


@pytest.mark.parametrize("native", [True, False])
def test_the_fast_recipe_trains_in_bfloat16_only_where_it_is_native(
    tiny, tmp_path, monkeypatch, native
):
    """A forward hook on every convolution sees what autocast gave it: bfloat16 in
    training where the device has it, float32 elsewhere; evaluations always run in
    float32 and the weights stay float32 (autocast keeps a float32 master copy)."""
    from archlab.training import speed

    monkeypatch.setattr(speed, "bf16_native", lambda device: native)
    seen = []

    def hook(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            seen.append((module.training, output.dtype))

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        run = archlab.train(
            "speednet", data=tiny, runs=tmp_path, recipe="fast", epochs=1, batch_size=100, **QUIET
        )
    finally:
        handle.remove()
    training = {dtype for was_training, dtype in seen if was_training}
    evaluating = {dtype for was_training, dtype in seen if not was_training}
    assert training == ({torch.bfloat16} if native else {torch.float32})
    assert evaluating == {torch.float32}
    assert all(p.dtype == torch.float32 for p in run.model.parameters())


def test_shifted_views_are_the_mean_of_each_shifted_forward_pass():
    """shift_tta_probabilities against shifts written out here: pad with black, slice."""
    from archlab.training.speed import shift_tta_probabilities

    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10)).eval()
    images = torch.randint(0, 256, (4, 28, 28), dtype=torch.uint8)
    mean, std = 0.2860, 0.3530
    padded = nn.functional.pad(images, (1, 1, 1, 1))
    expected = 0
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            # output pixel (i, j) is input pixel (i - dy, j - dx), black outside
            view = padded[:, 1 - dy : 29 - dy, 1 - dx : 29 - dx]
            x = (view.float() / 255 - mean) / std
            expected = expected + net(x.unsqueeze(1)).softmax(1)
    got = shift_tta_probabilities(net, images, (mean, std), shift=1)
    torch.testing.assert_close(got, expected / 9)


def test_fast_long_reads_its_final_test_accuracy_over_shifted_views(tiny, tmp_path):
    """The run's own (last) reading is the shifted views' accuracy (the points before it
    read the image alone: 9 views at each would double a run's time)."""
    from archlab.training.speed import evaluate_tta

    run = archlab.train(
        "cnn", data=tiny, runs=tmp_path, recipe="fast-long", epochs=2, batch_size=50,
        log_every=3, **QUIET,
    )  # fmt: skip
    history = run.history["eval"]
    model, norm = run.model, run.normalize
    final = evaluate_tta(model, tiny.test_images, tiny.test_labels, norm, shift=1)[0]
    assert history[-1]["test_accuracy"] == pytest.approx(final) == run.test_accuracy
    assert RECIPES["fast-long"].shift_tta == 1 and RECIPES["fast"].shift_tta == 0
