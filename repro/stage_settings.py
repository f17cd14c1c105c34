"""What each pipeline stage reads from params.yaml, resolved: one small JSON file per stage and
experiment, written by ``repro resolve`` (the pipeline's first stage).

The stages depend on these files instead of on sections of params.yaml. A stage therefore reruns
exactly when a setting it reads changes its resolved value: not when a default that every
profile overrides changes, nor when another experiment's entry changes. And DVC records one hash
per stage instead of every section's values, which keeps its lock file small (reading and
rewriting it once per stage was most of the pipeline's overhead).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from repro.config import Experiment, Params
from repro.files import write_json
from repro.layout import ProfileLayout

# Stage -> the sections of an experiment its command reads (the run's checkpoints, which carry
# the model, are a separate dependency). `calibration` and `ood` are params.yaml's own sections.
EXPERIMENT_STAGES: dict[str, tuple[str, ...]] = {
    "train": ("data", "model", "solver", "loss", "optimizer", "training", "evaluation"),
    "eval_bpd": ("data", "model", "solver", "evaluation"),
    "fid": ("data", "model", "solver", "evaluation", "fid"),
    "shuffled_bpd": ("data", "model", "solver", "evaluation", "calibration"),
    "ood": ("data", "model", "solver", "evaluation", "ood"),
}


def experiment_stage_settings(
    experiment: Experiment, stage: str, *, shared: Mapping[str, dict[str, Any]]
) -> dict[str, Any]:
    """The resolved settings one stage of one experiment reads.

    Args:
        experiment: The experiment, resolved under the profile.
        stage: A key of :data:`EXPERIMENT_STAGES`.
        shared: params.yaml's own sections under the profile (``calibration``, ``ood``), as
            plain data.
    """
    sections = EXPERIMENT_STAGES[stage]
    own = [section for section in sections if section not in shared]
    return {
        "id": experiment.id,
        "profile": experiment.profile,
        **experiment.sections(*own),
        **{section: shared[section] for section in sections if section in shared},
    }


def write_stage_settings(params: Params, *, profile: str | None = None) -> list[Path]:
    """Write every stage's settings under ``runs/<profile>/settings/`` (see
    :meth:`repro.layout.ProfileLayout.stage_settings`); a file whose content is unchanged keeps its
    hash, so the stages reading it stay current.

    Returns:
        The files written.

    Raises:
        ConfigError: Unknown profile or malformed settings (before anything is written).
    """
    layout = ProfileLayout(params.checked_profile(profile))
    shared = {
        "calibration": dataclasses.asdict(params.calibration(layout.profile)),
        "ood": dataclasses.asdict(params.ood(layout.profile)),
    }
    contents = {layout.stage_settings(None, "calibration"): shared["calibration"]}
    for experiment_id in params.experiment_ids:
        experiment = params.experiment(experiment_id, profile=layout.profile)
        for stage in EXPERIMENT_STAGES:
            path = layout.stage_settings(experiment_id, stage)
            contents[path] = experiment_stage_settings(experiment, stage, shared=shared)
    for path, settings in contents.items():
        write_json(path, settings)
    return list(contents)
