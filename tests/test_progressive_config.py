"""Progressive experiments in params.yaml: levels matched by resolution, refusals in one line."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from repro.config import ConfigError, Params, load_params
from repro.levels import level_sizes, matched_levels, trained_levels
from repro.param_counts import trained_share

PARAMS = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
CHILD, PARENT = "imagenet128-4res", "imagenet64-3res-small"


def _mutated(change) -> Params:
    raw = copy.deepcopy(PARAMS.raw)
    change(raw)
    return Params(path=Path("params.yaml"), raw=raw)


def _child(raw: dict) -> dict:
    return raw["progressive_experiments"][CHILD]


@pytest.mark.parametrize("profile", PARAMS.profiles)
def test_imagenet128_trains_its_finest_level_on_the_imagenet64_levels(profile: str) -> None:
    child = PARAMS.experiment(CHILD, profile=profile)
    parent = PARAMS.experiment(PARENT, profile=profile)
    assert child.training.init_from == PARENT
    assert trained_levels(child) == (0,)
    assert level_sizes(child)[1:] == level_sizes(parent)
    assert matched_levels(child, parent) == {1: 0, 2: 1, 3: 2}


def test_the_whole_model_is_counted_and_the_finest_level_alone_is_trained() -> None:
    child = PARAMS.experiment(CHILD, profile="paper")
    assert trained_share(child) == (2_741_088, 702_672)


def test_the_budget_is_the_published_hours_less_the_parents(published) -> None:
    child, parent = (
        PARAMS.experiment(CHILD, profile="paper"),
        PARAMS.experiment(PARENT, profile="paper"),
    )
    cell, parent_cell = child.paper.table5, parent.paper.table5
    whole = published.table5.hours(cell.model, cell.dataset)
    beyond = whole - published.table5.hours(parent_cell.model, parent_cell.dataset)
    assert child.training.time_budget_hours == pytest.approx(beyond, abs=1e-9)
    assert 0 < child.training.time_budget_hours < whole


@pytest.mark.parametrize(
    ("change", "message"),
    [
        # Same image size as the parent: the child's levels are 16, 8, 4, 2, the parent's 16, 8, 4.
        (
            lambda r: r["profiles"]["smoke"]["experiments"][CHILD]["data"].update(image_size=16),
            "matched by resolution",
        ),
        (lambda r: _child(r)["training"].update(init_from="cifar10-9res"), "unknown experiment"),
        (lambda r: _child(r)["training"].update(train_levels=[7]), "outside its 4 levels"),
        (lambda r: _child(r)["training"].update(train_levels=[]), "names no level"),
        (
            lambda r: r["profiles"]["smoke"]["experiments"][CHILD].update(model={"blocks": 3}),
            "another blocks",
        ),
        (
            lambda r: _child(r)["training"].update(train_levels="all", init_from=None),
            "has no training.init_from",
        ),
    ],
)
def test_a_progressive_experiment_that_cannot_start_from_its_parent_is_one_line(
    change, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        _mutated(change).experiment(CHILD, profile="smoke")
    assert "\n" not in str(error.value)


def test_init_from_outside_the_progressive_section_is_refused() -> None:
    params = _mutated(
        lambda r: (
            r["experiments"]["cifar10-1res"]
            .setdefault("training", {})
            .update(init_from="cifar10-2res-small")
        )
    )
    with pytest.raises(ConfigError, match="move the experiment to progressive_experiments"):
        params.experiment("cifar10-1res", profile="smoke")


def test_circular_init_from_is_one_line() -> None:
    def circle(raw: dict) -> None:
        for name, parent in (("loop-a", "loop-b"), ("loop-b", "loop-a")):
            raw["progressive_experiments"][name] = {
                "model": {"resolutions": 2, "blocks": 1},
                "training": {"init_from": parent},
            }

    with pytest.raises(ConfigError, match="loop-a -> loop-b -> loop-a"):
        _mutated(circle).experiment("loop-a", profile="smoke")
