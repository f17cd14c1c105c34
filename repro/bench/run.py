"""``repro bench``: every variant against the authors' formulation, and projected GPU hours."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import torch

from repro.bench.measure import Workload, bench_variant, kernel_profile
from repro.bench.variants import REFERENCE, VARIANTS, default_variant
from repro.config import Experiment
from repro.datasets.registry import DATASETS
from repro.errors import ReproError
from repro.train import scheduled_iterations


class BenchSettingError(ReproError):
    """A benchmark that cannot run as asked."""


def bench(
    experiment: Experiment,
    *,
    device: torch.device,
    variants: list[str],
    batch_size: int | None = None,
    images: str = "noise",
    weights: Mapping[str, torch.Tensor] | None = None,
    iterations: int = 3,
    on_row: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run every named variant and express each as a ratio to the authors' formulation.

    ``on_row(name, row)`` is called as each variant finishes (progress for long runs).

    Args:
        batch_size: Images per iteration; ``None``: the experiment's pinned batch.
        images: A kind of :data:`repro.bench.images.IMAGES`.
        weights: A trained model's weights (its evaluations, and so its cost, are several times
            a fresh model's); ``None``: a fresh model.

    Returns:
        Per variant its timings, with ``speedup_vs_authors`` and ``bits_per_dim_difference`` (to
        the authors' formulation on the same inputs); and the default path's kernel profile.

    Raises:
        BenchSettingError: An unknown variant, or TF32 asked for off CUDA.
    """
    unknown = [name for name in variants if name not in VARIANTS]
    if unknown:
        raise BenchSettingError(
            f"unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}"
        )
    if device.type != "cuda" and any(VARIANTS[name].tf32 for name in variants):
        raise BenchSettingError("TF32 variants need --device cuda: leave them out on a CPU")
    workload = Workload(
        batch_size=batch_size or experiment.training.batch_size, images=images, weights=weights
    )
    names = [REFERENCE, *(name for name in variants if name != REFERENCE)]
    rows = {}
    for name in names:
        rows[name] = bench_variant(
            experiment, VARIANTS[name], device=device, workload=workload, iterations=iterations
        )
        if on_row is not None:
            on_row(name, rows[name])
    reference = rows[REFERENCE]
    for row in rows.values():
        if "error" in row or "error" in reference:
            continue
        seconds = row["seconds_per_iteration"]
        row["speedup_vs_authors"] = reference["seconds_per_iteration"] / seconds
        row["bits_per_dim_difference"] = row["bits_per_dim"] - reference["bits_per_dim"]
    return {
        "experiment": experiment.id,
        "batch_size": workload.batch_size,
        "images": images,
        "trained_weights": weights is not None,
        "iterations": iterations,
        "variants": rows,
        "kernel_profile": kernel_profile(experiment, device=device, workload=workload),
    }


def project(
    experiments: list[Experiment],
    *,
    published_hours: dict[str, float | None],
    device: torch.device,
    on_row: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Projected hours of each experiment's pinned schedule on its default path, at its batch.

    An experiment whose direct backpropagation does not fit in device memory is timed with the
    adjoint method, as its training would have to run.

    Returns:
        Per experiment: the path timed, seconds per iteration (or an ``error``), forward NFE,
        projected and published hours, the schedule's iterations and how many of them fit in
        the published hours.
    """
    rows: dict[str, dict[str, Any]] = {}
    for experiment in experiments:
        variant = default_variant(experiment)
        paths = [variant, dataclasses.replace(variant, adjoint=True)]
        for path in paths:
            row = bench_variant(
                experiment,
                path,
                device=device,
                workload=Workload(batch_size=experiment.training.batch_size),
                iterations=1,
                inference=False,
            )
            if "error" not in row:
                break
        result: dict[str, Any] = {
            "path": "adjoint" if path.adjoint else "direct",
            "published_hours": published_hours.get(experiment.id),
        }
        if "error" in row:
            result["error"] = row["error"]
        else:
            seconds = row["seconds_per_iteration"]
            published = result["published_hours"]
            result |= {
                "seconds_per_iteration": seconds,
                "nfe_forward": row["nfe_forward"],
                "hours": projected_hours(experiment, seconds_per_iteration=seconds),
                "schedule_iterations": pinned_iterations(experiment),
                # How far a run stopped at the published compute gets (the ImageNet budgets).
                "iterations_in_published_hours": (
                    None if published is None else int(published * 3600 / seconds)
                ),
            }
        rows[experiment.id] = result
        if on_row is not None:
            on_row(experiment.id, result)
    return rows


def pinned_iterations(experiment: Experiment) -> int:
    """Iterations of the experiment's schedule on its whole training split."""
    images = experiment.data.limit_train or DATASETS[experiment.data.dataset].train_images
    return scheduled_iterations(experiment.training, num_images=images)


def projected_hours(experiment: Experiment, *, seconds_per_iteration: float) -> float:
    """Hours the pinned schedule takes at the measured speed (early NFE; it grows in training)."""
    return pinned_iterations(experiment) * seconds_per_iteration / 3600
