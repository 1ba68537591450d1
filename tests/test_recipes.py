"""archlab/training/recipes.py: the recipes, their schedules and the settings a run
records."""

from itertools import pairwise

import pytest

from archlab.errors import ArchlabError
from archlab.training.recipes import RECIPES, TrainConfig, cosine_lr, scheduled_lr


def test_cosine_schedule_starts_at_lr_and_ends_at_zero():
    assert cosine_lr(1e-3, 0, 3000) == 1e-3
    assert cosine_lr(1e-3, 1500, 3000) == pytest.approx(5e-4)
    assert cosine_lr(1e-3, 3000, 3000) == pytest.approx(0.0, abs=1e-18)


def test_one_cycle_rises_to_its_peak_then_falls():
    rates = [scheduled_lr("onecycle", 1e-3, i, 1000) for i in range(1001)]
    peak = max(range(1001), key=rates.__getitem__)
    assert rates[peak] == pytest.approx(1e-3) and 200 <= peak <= 300  # a quarter: warming up
    assert rates[0] == pytest.approx(1e-3 / 25)
    assert rates[-1] < 1e-3 / 1000
    assert all(a <= b for a, b in pairwise(rates[: peak + 1]))
    assert all(a >= b for a, b in pairwise(rates[peak:]))


def test_every_recipe_is_described():
    assert {"careful", "lecture", "onecycle"} <= set(RECIPES)
    assert all(r.summary for r in RECIPES.values())


def test_a_newer_archlabs_settings_are_named_as_such():
    values = {"model": "dnn", "recipe": "careful", "from_the_future": 1}
    with pytest.raises(ArchlabError, match="written by a newer archlab"):
        TrainConfig.from_dict(values)


def test_an_older_checkpoints_settings_take_the_new_fields_defaults():
    config = TrainConfig.from_dict({"model": "cnn", "recipe": "careful", "epochs": 5})
    assert config.restart == 0 and config.epochs == 5


# what only Python callers set: the command line always figures, shows a bar on a terminal
PYTHON_ONLY = {"reuse", "max_iterations", "figures", "progress"}
# a setting that fills a TrainConfig field of another name (the setting asks, the config
# records what was done)
RENAMED = {"held_out": "hold_out"}


def test_the_cli_and_train_fill_the_one_settings_dataclass():
    import inspect
    from dataclasses import fields

    from archlab.cli import build_parser
    from archlab.training.recipes import TrainSettings
    from archlab.training.train import train

    names = {f.name for f in fields(TrainSettings)}
    # every run number of TrainConfig is a setting (model and restart are archlab's own)
    config = {RENAMED.get(f.name, f.name) for f in fields(TrainConfig)}
    assert config - {"model", "restart"} <= names
    assert names <= set(inspect.signature(train).parameters)
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    args = sub.choices["train"].parse_args(["dnn"])
    assert names - PYTHON_ONLY <= set(vars(args))  # the CLI has an option for each other


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (1, True),
        (10**6, True),
        (0, False),
        (-1, False),
        (10**9, False),
        (True, False),
        (2.5, False),
    ],
)
def test_watch_is_range_checked(value, ok):
    from archlab.training.recipes import TrainSettings

    if ok:
        TrainSettings(watch=value).validate()
    else:
        with pytest.raises(ArchlabError, match=f"watch={value!r}: record every 1 to 1,000,000"):
            TrainSettings(watch=value).validate()
