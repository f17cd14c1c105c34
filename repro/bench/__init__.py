"""Speed and memory of the training, evaluation and sampling paths, variant against variant.

Every variant runs in one process on the same images of the experiment's shape (uniform noise or
structured synthetic images) and the same weights (a fresh model's, or a trained checkpoint's),
and is reported as a ratio to the authors' formulation (adjoint backpropagation, autograd's
vector-Jacobian product, eager, float32), so a speed-up is measured rather than asserted;
its bits per dimension on the same inputs and Hutchinson probes show that it computes the same
log-likelihood.

``variants`` defines what is compared, ``measure`` times one variant, ``run`` compares them all
and projects the GPU hours of the pinned schedules.
"""

from repro.bench.measure import PEAK_FLOPS, bench_variant, kernel_profile, velocity_flops
from repro.bench.run import bench, pinned_iterations, project, projected_hours
from repro.bench.variants import (
    REFERENCE,
    VARIANTS,
    Variant,
    checkpoint_weights,
    default_variant,
)

__all__ = [
    "PEAK_FLOPS",
    "REFERENCE",
    "VARIANTS",
    "Variant",
    "bench",
    "bench_variant",
    "checkpoint_weights",
    "default_variant",
    "kernel_profile",
    "pinned_iterations",
    "project",
    "projected_hours",
    "velocity_flops",
]
