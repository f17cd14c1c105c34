"""Multi-Resolution Continuous Normalizing Flows: the model library.

Tensors in, tensors out: nothing here knows about files, datasets, command lines or DVC.
"""

from mrcnf.cnf import CNF, DIVERGENCES, FlowOutput, SolverOptions
from mrcnf.likelihood import (
    bits_per_dim,
    dequantize,
    inverse_logit_transform,
    logit_transform,
    quantize,
    standard_normal_log_prob,
)
from mrcnf.model import MRCNF, Density, MRCNFConfig, count_parameters
from mrcnf.transform import TRANSFORMS, merge, split
from mrcnf.velocity import VelocityField

__all__ = [
    "CNF",
    "DIVERGENCES",
    "MRCNF",
    "TRANSFORMS",
    "Density",
    "FlowOutput",
    "MRCNFConfig",
    "SolverOptions",
    "VelocityField",
    "bits_per_dim",
    "count_parameters",
    "dequantize",
    "inverse_logit_transform",
    "logit_transform",
    "merge",
    "quantize",
    "split",
    "standard_normal_log_prob",
]
