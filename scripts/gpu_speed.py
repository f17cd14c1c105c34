"""The speed of a trained model on one GPU: sampling (eager and CUDA-graphed, bit for bit equal),
test-set evaluation, and training variant against variant.

Trains cifar10-2res-small at its pinned settings for ``--train-seconds`` on structured synthetic
images of CIFAR10's shape (no CIFAR10 is needed; real-data NFE may differ), saves the model as a
checkpoint, then measures on it
- sampling: images/s of the per-sample solver one step at a time and as CUDA graphs, their
  equality bit for bit, NFE per image, and the projected minutes of 50,000 samples;
- Inception features (when the FID weights are there) and the projected FID wall time at one
  temperature (50,000 samples and their features);
- evaluation: the three passes ``repro eval bpd`` runs, images/s, and the projected minutes
  for 10,000 test images;
- training: ``repro bench``'s variants on the trained weights, and on imagenet64-2res-small.

Usage:
  python scripts/gpu_speed.py --out OUT                                    # on the GPU, ≤ 7 min
  python scripts/gpu_speed.py --out /tmp/try --profile smoke --device cpu --train-seconds 5 \\
      --images 8 --bench-iterations 1                                      # a CPU try-out
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from mrcnf import MRCNF, PerSampleExecution
from repro.bench import bench, checkpoint_weights
from repro.bench.images import bench_images, structured
from repro.checkpoint import save_checkpoint
from repro.config import Experiment, load_params
from repro.datasets.registry import image_shape
from repro.errors import ReproError
from repro.eval_bpd import evaluate_bits_per_dim
from repro.fid import ensure_inception_weights
from repro.fid.features import extract_features
from repro.models import build_model
from repro.optimization import optimization_step
from repro.runtime import configure_numerics, synchronize
from repro.sampling import CUDA_SAMPLING, generate_images
from repro.schema import to_plain

# The evaluation target's count: CIFAR10's test split (the FID target's is fid.num_samples).
TEST_IMAGES = 10_000


def train_for(experiment: Experiment, *, seconds: float, device: torch.device) -> tuple[MRCNF, int]:
    """The experiment's model trained on structured images for about ``seconds``."""
    shape = image_shape(experiment.data)
    torch.manual_seed(experiment.training.seed)
    model = build_model(experiment, channels=shape[0]).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=experiment.optimizer.lr)
    began, iteration = time.perf_counter(), 0
    while time.perf_counter() - began < seconds:
        x = bench_images("structured", experiment.training.batch_size, shape, seed=iteration)
        x = x.to(device)
        optimization_step(model, optimizer, x, experiment=experiment, iteration=iteration)
        iteration += 1
    return model.eval(), iteration


def timed(run: Callable[[], Any], device: torch.device) -> tuple[Any, float]:
    """``run()`` and its wall seconds, the device's queued work included."""
    synchronize(device)
    began = time.perf_counter()
    result = run()
    synchronize(device)
    return result, time.perf_counter() - began


def sampling(
    model: MRCNF, experiment: Experiment, *, count: int, device: torch.device
) -> dict[str, Any]:
    """Eager against graphed sampling of the same seeds, at the FID stages' batch size."""
    _, height, width = image_shape(experiment.data)
    batch = experiment.fid.batch_size

    def draw(execution: PerSampleExecution) -> torch.Tensor:
        return generate_images(
            model, seeds=range(count), height=height, width=width, temperature=1.0,
            batch_size=batch, device=device, execution=execution,
        )  # fmt: skip

    model.reset_function_evaluations()
    eager, eager_s = timed(lambda: draw(PerSampleExecution()), device)
    nfe = model.function_evaluations
    # On a CPU the same chunks, run eagerly (the graph is CUDA's alone).
    fast = CUDA_SAMPLING if device.type == "cuda" else replace(CUDA_SAMPLING, cuda_graph=False)
    draw(fast)  # warm-up: captures and cuDNN handles
    graphed, graphed_s = timed(lambda: draw(fast), device)
    return {
        "images": count,
        "batch_size": batch,
        # Evaluations of the velocity networks per batch, as the eager solver counts them.
        "nfe_per_batch": nfe / -(-count // batch),
        "eager_images_per_second": count / eager_s,
        "graphed_images_per_second": count / graphed_s,
        "execution": str(fast),
        "graphed_equals_eager": bool(torch.equal(eager, graphed)),
        "fid_samples": experiment.fid.num_samples,
        "minutes_for_fid_samples_graphed": experiment.fid.num_samples * graphed_s / count / 60,
        "minutes_for_fid_samples_eager": experiment.fid.num_samples * eager_s / count / 60,
    }


def inception(count: int, device: torch.device) -> dict[str, Any]:
    """Images/s of the FID feature extractor as the FID stages run it, when its weights are here
    (data/cache)."""
    try:
        weights = ensure_inception_weights(allow_download=False)
    except ReproError as error:
        return {"skipped": str(error)}
    images = torch.randint(0, 256, (count, 3, 32, 32), dtype=torch.uint8)
    extract_features(images[:8], weights=weights, device=device)
    _, seconds = timed(lambda: extract_features(images, weights=weights, device=device), device)
    return {"images": count, "images_per_second": count / seconds}


def evaluation(model: MRCNF, experiment: Experiment, *, count: int, device: torch.device) -> dict:
    """The three passes of ``repro eval bpd`` on structured test images."""
    shape = image_shape(experiment.data)
    test = structured(count, shape, seed=10**6)
    batch = experiment.evaluation.batch_size
    result, seconds = timed(
        lambda: evaluate_bits_per_dim(model, test, batch_size=batch, seed=0, device=device),
        device,
    )
    return {
        "images": count,
        "batch_size": batch,
        "nfe_mean": result["nfe_mean"],
        "bpd": result["bpd"],
        "seconds": seconds,
        "minutes_for_10k": seconds * TEST_IMAGES / count / 60,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--profile", default="paper")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--train-seconds", type=float, default=90)
    parser.add_argument("--images", type=int, default=1000, help="Sampled and evaluated.")
    parser.add_argument("--bench-iterations", type=int, default=2)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device)
    configure_numerics(tf32=False)
    params = load_params()
    experiment = params.experiment("cifar10-2res-small", profile=args.profile)
    report: dict[str, Any] = {"device": str(device), "profile": args.profile}

    model, iterations = train_for(experiment, seconds=args.train_seconds, device=device)
    checkpoint = args.out / "cifar10-2res-small.pt"
    shape = list(image_shape(experiment.data))
    save_checkpoint(
        checkpoint,
        {"config": to_plain(experiment), "model": model.state_dict(), "image_shape": shape},
    )
    report["trained_iterations"] = iterations
    print(f"trained {iterations} iterations in {args.train_seconds} s -> {checkpoint}", flush=True)

    steps = {
        "sampling": lambda: sampling(model, experiment, count=args.images, device=device),
        "inception": lambda: inception(args.images, device),
        "evaluation": lambda: evaluation(model, experiment, count=args.images, device=device),
        "bench_trained": lambda: bench(
            experiment,
            device=device,
            variants=["direct+vjp", "direct+vjp+compile"],
            images="structured",
            weights=checkpoint_weights(checkpoint, experiment),
            iterations=args.bench_iterations,
        ),
        "bench_imagenet64": lambda: bench(
            params.experiment("imagenet64-2res-small", profile=args.profile),
            device=device,
            variants=["direct+vjp", "direct+vjp+compile"],
            images="structured",
            iterations=args.bench_iterations,
        ),
    }
    for name, step in steps.items():
        began = time.perf_counter()
        report[name] = step()
        print(f"=== {name} ({time.perf_counter() - began:.0f} s): {report[name]}", flush=True)
        (args.out / "gpu_speed.json").write_text(json.dumps(report, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
