"""repro bench: FLOP counting and a tiny end-to-end run of the variant comparison."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from mrcnf import MRCNF, MRCNFConfig, dequantize
from repro.bench import (
    REFERENCE,
    VARIANTS,
    bench,
    bench_variant,
    measure,
    project,
    projected_hours,
    velocity_flops,
)
from repro.bench.images import IMAGES
from repro.bench.measure import Workload
from repro.bench.run import BenchSettingError
from repro.bench.variants import bench_model, checkpoint_weights
from repro.checkpoint import CheckpointError
from repro.cli import main
from repro.cli.bench import IMAGE_KINDS
from repro.config import load_params
from repro.datasets import load_experiment_data
from repro.layout import RunLayout
from repro.models import build_model
from repro.train import TrainingBatches, train
from tests.profiles import params_with_profile, tiny_profile

REPO = Path(__file__).resolve().parents[1]
PARAMS = load_params(REPO / "params.yaml")


def test_velocity_flops_match_the_convolutions_actually_run() -> None:
    model = MRCNF(MRCNFConfig(channels=3, resolutions=3, blocks=1, width=8))
    counted: list[float] = []

    def count(module: torch.nn.Conv2d, inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
        counted.append(2 * module.in_channels * 9 * output[0].numel())

    for conv in (m for m in model.modules() if isinstance(m, torch.nn.Conv2d)):
        conv.register_forward_hook(count)
    with torch.no_grad():
        for level, flow in enumerate(model.flows):
            size = 16 >> min(level + 1, 2)
            field = flow.blocks[0].field
            cond = torch.zeros(1, 3, size, size) if field.cond_channels else None
            field(
                torch.tensor(0.0),
                torch.zeros(1, field.layers[-1].conv.out_channels, size, size),
                cond,
            )
    per_block = [sum(counted[i : i + 4]) for i in range(0, len(counted), 4)]
    assert velocity_flops(model, 16, 16) == pytest.approx(per_block)


def test_bench_compares_variants_with_the_authors_formulation() -> None:
    experiment = PARAMS.experiment("cifar10-2res-small", profile="smoke")
    result = bench(
        experiment,
        device=torch.device("cpu"),
        variants=["direct", "direct+vjp"],
        batch_size=4,
        iterations=1,
    )
    rows = result["variants"]
    assert list(rows) == [REFERENCE, "direct", "direct+vjp"]
    assert rows[REFERENCE]["speedup_vs_authors"] == 1.0
    assert rows[REFERENCE]["nfe_backward"] > 0 and rows["direct"]["nfe_backward"] == 0
    assert all(row["seconds_per_iteration"] > 0 for row in rows.values())
    # Same weights, inputs and probes: the forward pass is the reference's to float rounding.
    assert rows["direct"]["bits_per_dim_difference"] == 0
    assert abs(rows["direct+vjp"]["bits_per_dim_difference"]) < 1e-4
    assert result["kernel_profile"]["operators_per_iteration"] > 0


@pytest.fixture
def direct_does_not_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Direct backpropagation runs out of device memory; the adjoint method fits."""
    original = measure.time_training

    def timed(model: MRCNF, *args: object, **kwargs: object) -> dict[str, float]:
        if not model.config.train_solver.adjoint:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return original(model, *args, **kwargs)

    monkeypatch.setattr(measure, "time_training", timed)


SMOKE = PARAMS.experiment("cifar10-2res-small", profile="smoke")


@pytest.mark.usefixtures("direct_does_not_fit")
def test_a_variant_out_of_memory_is_reported_instead_of_raised() -> None:
    options = dict(
        device=torch.device("cpu"), workload=Workload(batch_size=2), iterations=1, inference=False
    )
    adjoint = bench_variant(SMOKE, VARIANTS[REFERENCE], **options)
    direct = bench_variant(SMOKE, VARIANTS["direct"], **options)
    assert adjoint["seconds_per_iteration"] > 0
    assert direct == {"error": "out of memory"}


@pytest.mark.usefixtures("direct_does_not_fit")
def test_projection_falls_back_to_the_adjoint_method_when_direct_does_not_fit() -> None:
    rows = project([SMOKE], published_hours={SMOKE.id: 19.79}, device=torch.device("cpu"))
    row = rows[SMOKE.id]
    assert row["path"] == "adjoint" and row["published_hours"] == 19.79
    assert row["schedule_iterations"] == SMOKE.training.max_iterations
    seconds = row["seconds_per_iteration"]
    assert row["iterations_in_published_hours"] == int(19.79 * 3600 / seconds)
    assert row["hours"] == pytest.approx(
        projected_hours(SMOKE, seconds_per_iteration=row["seconds_per_iteration"])
    )


def test_unknown_variant_and_tf32_off_cuda_are_refused() -> None:
    experiment = PARAMS.experiment("cifar10-2res-small", profile="smoke")
    with pytest.raises(BenchSettingError, match="unknown variant"):
        bench(experiment, device=torch.device("cpu"), variants=["fastest"])
    with pytest.raises(BenchSettingError, match="TF32"):
        bench(experiment, device=torch.device("cpu"), variants=["direct+vjp+tf32"])


def test_projected_hours_follow_the_pinned_schedule() -> None:
    experiment = PARAMS.experiment("cifar10-2res-small", profile="paper")
    # 200 epochs × 500 iterations of 100 images at 1 s each.
    assert projected_hours(experiment, seconds_per_iteration=1.0) == pytest.approx(100_000 / 3600)


def _step_experiment(tmp_path: Path, *, grad_clip: float, skip_grad_norm: float):
    profile = tiny_profile(
        limit_train=64, limit_test=32, max_iterations=2, checkpoint_every_iterations=2
    )
    params = tmp_path / "params.yaml"
    params.write_text(params_with_profile("tiny", profile))
    experiment = load_params(params).experiment("cifar10-2res-small", profile="tiny")
    rules = replace(experiment.optimizer, grad_clip=grad_clip, skip_grad_norm=skip_grad_norm)
    training = replace(experiment.training, accumulation_steps=2)
    return replace(experiment, optimizer=rules, training=training)


def _bench_iterations(experiment, batches: list[torch.Tensor]) -> tuple[MRCNF, list]:
    """Bench's training iterations from the state ``repro train`` starts from."""
    torch.manual_seed(experiment.training.seed)
    model = build_model(experiment, channels=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=experiment.optimizer.lr)
    outcomes = [
        measure.training_iteration(model, optimizer, x, experiment, iteration=i)
        for i, x in enumerate(batches)
    ]
    return model, outcomes


def test_bench_times_the_very_step_training_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generator = torch.Generator().manual_seed(0)
    digits = load_experiment_data(_step_experiment(tmp_path, grad_clip=1, skip_grad_norm=1).data)
    # A batch of noise, then one of digits: the second gradient is the larger.
    noise = torch.randint(0, 256, (32, 1, 8, 8), dtype=torch.uint8, generator=generator)
    batches = [
        dequantize(noise, generator=generator),
        dequantize(digits.train[:32], generator=generator),
    ]
    _, dry = _bench_iterations(
        _step_experiment(tmp_path, grad_clip=1e3, skip_grad_norm=1e9), batches
    )
    first, second = (outcome.grad_norm for outcome in dry)
    assert second > first, (first, second)
    # Clip the first step's gradient; skip the second step.
    experiment = _step_experiment(
        tmp_path, grad_clip=first / 4, skip_grad_norm=(first + second) / 2
    )

    monkeypatch.setattr(TrainingBatches, "batch", lambda self, state: batches[state.iteration])
    train(experiment, run_dir=tmp_path / "run", device=torch.device("cpu"))
    trained = torch.load(RunLayout(tmp_path / "run").checkpoint(), weights_only=True)["model"]
    benched, outcomes = _bench_iterations(experiment, batches)

    assert [o.skipped for o in outcomes] == [False, True]
    assert outcomes[0].grad_norm > experiment.optimizer.grad_clip
    for name, value in benched.state_dict().items():
        assert torch.equal(value, trained[name]), name


# --- a trained model (repro bench --checkpoint) ------------------------------------------------


@pytest.fixture
def trained_run(tmp_path: Path) -> tuple[Path, Path]:
    """params.yaml of a tiny profile, and cifar10-2res-small's last checkpoint trained on it."""
    profile = tiny_profile(
        limit_train=32, limit_test=16, max_iterations=2, checkpoint_every_iterations=2
    )
    params = tmp_path / "params.yaml"
    params.write_text(params_with_profile("tiny", profile))
    experiment = load_params(params).experiment("cifar10-2res-small", profile="tiny")
    train(experiment, run_dir=tmp_path / "run", device=torch.device("cpu"))
    return params, RunLayout(tmp_path / "run").checkpoint("last")


def test_bench_runs_every_variant_on_the_weights_of_a_checkpoint(trained_run) -> None:
    params, checkpoint = trained_run
    experiment = load_params(params).experiment("cifar10-2res-small", profile="tiny")
    weights = checkpoint_weights(checkpoint, experiment)
    stored = torch.load(checkpoint, weights_only=True)["model"]
    for name in (REFERENCE, "direct+vjp"):
        model = bench_model(experiment, VARIANTS[name], weights=weights)
        for key, value in model.state_dict().items():
            assert torch.equal(value, stored[key]), (name, key)
    fresh = bench_model(experiment, VARIANTS[REFERENCE]).state_dict()
    assert any(not torch.equal(value, stored[key]) for key, value in fresh.items())


def test_a_checkpoint_of_another_architecture_is_refused_naming_the_setting(trained_run) -> None:
    params, checkpoint = trained_run
    experiment = load_params(params).experiment("cifar10-2res-small", profile="tiny")
    wider = replace(experiment, model=replace(experiment.model, width=experiment.model.width + 8))
    with pytest.raises(CheckpointError, match=r"model\.width=") as caught:
        checkpoint_weights(checkpoint, wider)
    assert str(checkpoint) in str(caught.value) and "\n" not in str(caught.value)


def test_bench_command_records_the_checkpoint_it_timed(trained_run, tmp_path: Path) -> None:
    params, checkpoint = trained_run
    out = tmp_path / "bench.json"
    args = ["bench", "cifar10-2res-small", "--params", str(params), "--profile", "tiny"]
    args += ["--device", "cpu", "--variant", "direct", "--iterations", "1", "--batch-size", "4"]
    args += ["--checkpoint", str(checkpoint), "--images", "structured", "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    written = json.loads(out.read_text())
    assert written["checkpoint"] == str(checkpoint) and written["trained_weights"] is True
    assert written["images"] == "structured"
    assert written["variants"]["direct"]["bits_per_dim_difference"] == 0


def test_the_command_offers_exactly_the_registered_image_kinds() -> None:
    assert tuple(IMAGES) == IMAGE_KINDS


@pytest.mark.parametrize("kind", sorted(IMAGES))
def test_bench_images_depend_on_their_seed_alone(kind: str) -> None:
    images = IMAGES[kind](3, (3, 8, 8), seed=5)
    assert images.dtype == torch.uint8 and images.shape == (3, 3, 8, 8)
    assert torch.equal(images, IMAGES[kind](3, (3, 8, 8), seed=5))
    assert not torch.equal(images, IMAGES[kind](3, (3, 8, 8), seed=6))
