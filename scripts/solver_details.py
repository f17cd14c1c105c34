"""The authors' solver details, measured on one briefly trained model.

Trains an experiment at its pinned settings for a few iterations on synthetic images of its
dataset's shape (smooth random images: no dataset is needed), then reports
- the evaluation bpd with torchdiffeq's ending (past t = 1, interpolated back) and with a step
  ending exactly at t = 1, against a dopri5 reference at 1e-9 on a subset;
- the forward NFE of one training batch with the authors' first step (1/6) and with torchdiffeq's
  own guess.
Real-data NFE and bpd differ: the images are synthetic and the model barely trained.

Usage:
  python scripts/solver_details.py --device cuda --iterations 100 --out OUT/solver_details.json
  python scripts/solver_details.py --profile smoke --iterations 2 --images 16   # a CPU try-out
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from mrcnf import MRCNF, SolverOptions, dequantize
from repro.bench.images import structured
from repro.config import Experiment, load_params
from repro.datasets.registry import image_shape
from repro.eval_bpd import evaluate_bits_per_dim
from repro.models import build_model
from repro.optimization import optimization_step
from repro.runtime import synchronize


def with_solvers(model: MRCNF, *, train: SolverOptions, evaluation: SolverOptions) -> None:
    model.config = dataclasses.replace(model.config, train_solver=train, eval_solver=evaluation)


def train_briefly(
    experiment: Experiment, *, iterations: int, device: torch.device
) -> tuple[MRCNF, float]:
    """The experiment's model after ``iterations`` steps, and the seconds per step."""
    shape = image_shape(experiment.data)
    torch.manual_seed(experiment.training.seed)
    model = build_model(experiment, channels=shape[0]).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=experiment.optimizer.lr)
    batch = experiment.training.batch_size
    synchronize(device)
    began = time.perf_counter()
    for iteration in range(iterations):
        pixels = structured(batch, shape, seed=iteration)
        x = dequantize(pixels, generator=torch.Generator().manual_seed(iteration)).to(device)
        optimization_step(model, optimizer, x, experiment=experiment, iteration=iteration)
    synchronize(device)
    return model, (time.perf_counter() - began) / max(iterations, 1)


def forward_nfe(model: MRCNF, x: torch.Tensor, *, first_step: float | None) -> int:
    """Forward evaluations of one training batch with the given first step."""
    train = dataclasses.replace(model.config.train_solver, first_step=first_step)
    with_solvers(model, train=train, evaluation=model.config.eval_solver)
    model.train().reset_function_evaluations()
    with torch.no_grad():
        model.density(x, generator=torch.Generator(x.device).manual_seed(0))
    return model.function_evaluations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="cifar10-2res-small")
    parser.add_argument("--profile", default="paper")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--images", type=int, default=500, help="Evaluation images.")
    parser.add_argument("--reference-images", type=int, default=100, help="For dopri5 at 1e-9.")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    device = torch.device(args.device)
    experiment = load_params().experiment(args.experiment, profile=args.profile)
    model, seconds = train_briefly(experiment, iterations=args.iterations, device=device)
    print(f"{args.experiment}: {args.iterations} iterations, {seconds:.3f} s per iteration")

    shape = image_shape(experiment.data)
    batch = dequantize(structured(experiment.training.batch_size, shape, seed=-1)).to(device)
    pinned = experiment.solver.train.first_step
    nfe = {
        "first_step_pinned": pinned,
        "nfe_forward_pinned": forward_nfe(model, batch, first_step=pinned),
        "nfe_forward_automatic": forward_nfe(model, batch, first_step=None),
    }
    with_solvers(model, train=experiment.solver.train, evaluation=experiment.solver.eval)

    test = structured(args.images, shape, seed=10**6)
    settings = dict(batch_size=experiment.evaluation.batch_size, seed=0, device=device)
    measured = evaluate_bits_per_dim(model, test, **settings)
    reference_solver = SolverOptions(method="dopri5", atol=1e-9, rtol=1e-9)
    subset = test[: args.reference_images]
    on_subset = evaluate_bits_per_dim(model, subset, **settings)
    with_solvers(model, train=experiment.solver.train, evaluation=reference_solver)
    reference = evaluate_bits_per_dim(model, subset, **settings)["bpd"]
    report = {
        "experiment": args.experiment,
        "profile": args.profile,
        "device": str(device),
        "iterations": args.iterations,
        "seconds_per_iteration": seconds,
        **nfe,
        "bpd_interpolated_end": measured["bpd_interpolated_end"],
        "bpd_exact_end": measured["bpd_exact_end"],
        "subset_images": len(subset),
        "subset_bpd_interpolated_end": on_subset["bpd_interpolated_end"],
        "subset_bpd_exact_end": on_subset["bpd_exact_end"],
        "subset_bpd_dopri5_1e-9": reference,
    }
    for key, value in report.items():
        print(f"{key}: {value}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
