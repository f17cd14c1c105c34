"""Multi-Resolution Continuous Normalizing Flows: the model library.

Tensors in, tensors out: nothing here knows about files, datasets, command lines or DVC.

Names are loaded on first use (PEP 562), so ``mrcnf.config`` (the settings, free of torch) can be
imported by code that must not load torch, such as the harness's configuration and table code.
"""

from __future__ import annotations

import importlib
from typing import Any

# Public name -> the submodule defining it.
_EXPORTS = {
    "CNF": "cnf",
    "DIVERGENCES": "cnf",
    "FlowOutput": "cnf",
    "MRCNFConfig": "config",
    "MRCNFSettingError": "config",
    "SolverOptions": "config",
    "bits_per_dim": "likelihood",
    "dequantize": "likelihood",
    "inverse_logit_transform": "likelihood",
    "logit_transform": "likelihood",
    "multiresolution_noise_scales": "likelihood",
    "normal_log_prob": "likelihood",
    "quantize": "likelihood",
    "MRCNF": "model",
    "Density": "model",
    "count_parameters": "model",
    "PerSampleExecution": "per_sample",
    "TRANSFORMS": "transform",
    "merge": "transform",
    "split": "transform",
    "VelocityField": "velocity",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mrcnf' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"mrcnf.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
