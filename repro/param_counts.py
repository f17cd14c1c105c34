"""Exact parameter counts of constructed models, for Tables 5 and 6.

The configurations are derived, never listed a second time: Table 6's printed rows, then the size
of every experiment that fills a Table 5 cell (at the ``paper`` profile: the paper's
architectures, whatever a profile trains). All are RGB models, as the paper counts them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import NamedTuple

import torch

from mrcnf import MRCNF, MRCNFConfig, count_parameters
from repro.config import Experiment, Params
from repro.datasets.registry import image_shape
from repro.layout import ProfileLayout
from repro.levels import trained_levels
from repro.published import PAPER_CHANNELS, Published, load_published
from repro.results import ParamCount, ParamCounts, write_result
from repro.runtime import provenance


class Configuration(NamedTuple):
    """One model size to count."""

    resolutions: int
    blocks: int
    width: int


def configurations(
    published: Published, experiments: Mapping[str, Experiment]
) -> list[Configuration]:
    """Table 6's rows (its "channels" are the width), then the Table 5 experiments' sizes.

    Each configuration appears once, first where it first occurs, so the order is stable.
    """
    table6 = [Configuration(r.resolutions, r.blocks, r.channels) for r in published.table6.rows]
    table5 = [
        Configuration(e.model.resolutions, e.model.blocks, e.model.width)
        for e in experiments.values()
        if e.paper.table5 is not None
    ]
    return list(dict.fromkeys([*table6, *table5]))


def count(configuration: Configuration) -> ParamCount:
    """Construct the RGB model of ``configuration`` and count its parameters."""
    config = MRCNFConfig(channels=PAPER_CHANNELS, **configuration._asdict())
    return ParamCount(
        **configuration._asdict(),
        channels=PAPER_CHANNELS,
        params=count_parameters(MRCNF(config)),
    )


def trained_share(experiment: Experiment) -> tuple[int, int]:
    """(All parameters, those training updates) of the experiment's model for its images.

    A progressive experiment's frozen levels count among all parameters, not among the trained.
    """
    channels = image_shape(experiment.data)[0]
    model = MRCNF(experiment.model_config(channels=channels))
    trained = sum(count_parameters(model.flows[level]) for level in trained_levels(experiment))
    return count_parameters(model), trained


def param_counts(params: Params, *, profile: str) -> ParamCounts:
    """Count every configuration of :func:`configurations`, for ``profile``'s results.

    Raises:
        ConfigError: params.yaml is malformed.
        PublishedDataError: The published data are malformed.
    """
    found = configurations(load_published(), params.paper_experiments())
    # The counts depend on nothing but the configurations, so those are what the hash stands for.
    digest = hashlib.sha256(json.dumps(found).encode()).hexdigest()[:16]
    return ParamCounts(
        profile=profile,
        rows=[count(configuration) for configuration in found],
        provenance=provenance(profile=profile, params_hash=digest, device=torch.device("cpu")),
    )


def write_param_counts(params: Params, *, profile: str) -> ParamCounts:
    """Count (see :func:`param_counts`) and write the profile's parameter counts."""
    counts = param_counts(params, profile=profile)
    write_result(ProfileLayout(profile).param_counts, counts)
    return counts
