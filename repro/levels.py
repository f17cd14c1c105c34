"""The levels of an experiment's model: their resolutions, which are trained, and how the levels of
a progressive experiment match those of the experiment it starts from (``training.init_from``).

Level 0 is the finest: it models the details of the full image given its 2×2 average; the last
level models the coarsest image itself. A level is named by the side of the image it yields, so
a 4-level 128×128 model's levels are 128, 64, 32, 16 and a 3-level 64×64 model's 64, 32, 16: the
three coarser levels of the first are the levels of the second. Nothing here imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from repro.datasets.registry import image_shape
from repro.errors import ReproError

if TYPE_CHECKING:
    from repro.experiment import Experiment

# Model settings that two levels must share for one's weights to serve as the other's.
LEVEL_ARCHITECTURE = ("width", "blocks", "transform", "logit_alpha", "conditioning")


class LevelError(ReproError):
    """Levels named, or matched between experiments, that do not exist or do not fit."""


def level_sizes(experiment: Experiment) -> tuple[int, ...]:
    """The side of the image each level yields, finest level first."""
    _, height, _ = image_shape(experiment.data)
    return tuple(height >> level for level in range(experiment.model.resolutions))


def trained_levels(experiment: Experiment) -> tuple[int, ...]:
    """Indices (finest first) of the levels that training updates.

    Raises:
        LevelError: A level index outside the model.
    """
    count = experiment.model.resolutions
    chosen = experiment.training.train_levels
    if chosen == "all":
        return tuple(range(count))
    names = {"finest": 0, "coarsest": count - 1}
    levels = sorted({names.get(level, level) for level in chosen})
    if levels[0] < 0 or levels[-1] >= count:
        raise LevelError(
            f"{experiment.id}: training.train_levels {chosen} names a level outside "
            f"its {count} levels (0 = finest … {count - 1} = coarsest)"
        )
    return tuple(levels)


def matched_levels(child: Experiment, parent: Experiment) -> dict[int, int]:
    """Child level -> the parent level of the same resolution and role (coarsest or not)."""
    last_child, last_parent = child.model.resolutions - 1, parent.model.resolutions - 1
    parents = {
        (size, level == last_parent): level for level, size in enumerate(level_sizes(parent))
    }
    return {
        level: parents[key]
        for level, size in enumerate(level_sizes(child))
        if (key := (size, level == last_child)) in parents
    }


def check_progressive(child: Experiment, parent: Experiment) -> None:
    """Refuse a parent whose levels cannot start the child's untrained levels.

    Every level the child does not train must take its weights from a parent level of the same
    resolution and role, with the same architecture and image channels.

    Raises:
        LevelError: One line naming the experiments and what does not match.
    """
    where = f"{child.id}: training.init_from {parent.id!r}"
    differing = [
        name
        for name in LEVEL_ARCHITECTURE
        if getattr(child.model, name) != getattr(parent.model, name)
    ]
    if image_shape(child.data)[0] != image_shape(parent.data)[0]:
        differing.append("image channels")
    if differing:
        raise LevelError(f"{where} has another {', '.join(differing)}: its levels cannot be used")
    matched, trained = matched_levels(child, parent), trained_levels(child)
    unmatched = [level for level in range(child.model.resolutions) if level not in matched]
    frozen_unmatched = [level for level in unmatched if level not in trained]
    if frozen_unmatched or not matched:
        sizes, parent_sizes = level_sizes(child), level_sizes(parent)
        raise LevelError(
            f"{where}: levels are matched by resolution, and the levels "
            f"{[sizes[level] for level in frozen_unmatched or unmatched]} (of {list(sizes)}) "
            f"have none among its {list(parent_sizes)}: give the child twice the parent's image "
            "size per extra level, or train those levels"
        )
