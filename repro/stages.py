"""What the command line and the DVC stages share: run folders and resolved budgets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from repro.config import PUBLISHED, ConfigError, Experiment, Params
from repro.paths import runs_root
from repro.published import PrintedNumber, load_published

PAPER_PROFILE = "paper"


def run_dir(experiment: Experiment) -> Path:
    """The folder of an experiment's outputs under its profile: ``runs/<profile>/<id>``."""
    return runs_root() / experiment.profile / experiment.id


def time_budget_hours(experiment: Experiment) -> float | None:
    """The training budget in hours; ``published`` resolves to the experiment's Table 5 hours.

    Raises:
        ConfigError: If ``published`` is asked for and the paper printed no hours for the cell.
    """
    budget = experiment.training.time_budget_hours
    if budget != PUBLISHED:
        return budget
    cell = experiment.paper.get("table5") or {}
    table5 = load_published().table5
    rows = [row for group in table5.groups for row in group.rows] + list(table5.imagenet128)
    for row in rows:
        if row.model == cell.get("model") and cell.get("dataset") in row.cells:
            hours = row.cells[cell["dataset"]].hours
            if isinstance(hours, PrintedNumber):
                return hours.value
    raise ConfigError(
        f"experiments.{experiment.id}: training.time_budget_hours is 'published', but Table 5 "
        f"prints no hours for {cell or 'it'}: set a number or null"
    )


def table_inputs(params: Params, *, profile: str) -> dict[str, Any]:
    """What the table builders take, from params.yaml and the published data (no torch).

    Raises:
        ConfigError: If an experiment of params.yaml is malformed.
    """
    experiments = {}
    for experiment_id in params.experiment_ids:
        # Parameter counts describe the paper's architecture, whatever the profile trains.
        pinned = params.experiment(experiment_id, profile=PAPER_PROFILE)
        experiments[experiment_id] = {
            "dataset": pinned.data.dataset,
            "resolutions": pinned.model.resolutions,
            "blocks": pinned.model.blocks,
            "width": pinned.model.width,
            **pinned.paper,
        }
    for experiment_id, model in params.table7.items():
        experiments[experiment_id]["table7"] = {"model": model}
    return {
        "published": load_published(),
        "results_dir": runs_root() / profile,
        "experiments": experiments,
        "tolerances": params.tolerances,
        "profile": profile,
        "comparable": params.comparable(profile),
    }
