"""Parameter counts of Table 6's configurations, from constructed models."""

from __future__ import annotations

from typing import Any

import torch

from mrcnf import MRCNF, MRCNFConfig, count_parameters
from repro.config import ConfigError, Params
from repro.files import write_json
from repro.paths import runs_root
from repro.runtime import provenance


def param_counts(params: Params) -> list[dict[str, int]]:
    """Build every configuration of ``param_counts`` in params.yaml and count its parameters.

    Raises:
        ConfigError: If the ``param_counts`` section is malformed.
    """
    section = params.raw.get("param_counts")
    try:
        channels, width = int(section["channels"]), int(section["width"])
        configurations = [(int(r), int(b)) for r, b in section["configurations"]]
    except (TypeError, KeyError, ValueError):
        raise ConfigError(
            f"{params.path}: 'param_counts' needs channels, width and configurations "
            "as a list of [resolutions, blocks]"
        ) from None
    rows = []
    for resolutions, blocks in configurations:
        config = MRCNFConfig(channels=channels, resolutions=resolutions, blocks=blocks, width=width)
        rows.append(
            {
                "resolutions": resolutions,
                "blocks": blocks,
                "width": width,
                "channels": channels,
                "params": count_parameters(MRCNF(config)),
            }
        )
    return rows


def write_param_counts(params: Params, *, profile: str) -> dict[str, Any]:
    """Count and write ``runs/<profile>/param_counts.json``."""
    result = {
        "profile": profile,
        "rows": param_counts(params),
        "provenance": provenance(
            profile=profile, params_hash="param_counts", device=torch.device("cpu")
        ),
    }
    write_json(runs_root() / profile / "param_counts.json", result)
    return result
