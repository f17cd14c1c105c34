"""Training, resuming, checkpoints and bpd evaluation on real MNIST (small and fast)."""

from __future__ import annotations

import csv
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from repro.checkpoint import CheckpointError, check_resumable
from repro.config import load_params
from repro.eval_bpd import evaluate_run
from repro.layout import RunLayout
from repro.metrics_log import MetricsLog
from repro.optimization import learning_rate
from repro.results import BpdResult, TrainSummary
from repro.train import epoch_order, train
from tests.profiles import params_with_profile, tiny_profile

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
CPU = torch.device("cpu")
TIMING_COLUMNS = {"seconds", "images_per_second"}

TINY = tiny_profile(
    limit_train=320, limit_test=64, max_iterations=30, checkpoint_every_iterations=4
)


@pytest.fixture
def params_file(tmp_path: Path) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(params_with_profile("tiny", TINY))
    return path


def _metrics(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "train_metrics.tsv").open() as file:
        rows = list(csv.DictReader(file, delimiter="\t"))
    return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in rows]


def _train_command(params_file: Path) -> list[str]:
    options = ["--params", str(params_file), "--profile", "tiny", "--device", "cpu"]
    return [sys.executable, "-m", "repro", "train", "cifar10-2res-small", *options]


@pytest.mark.slow
def test_run_killed_and_resumed_ends_bit_identical_to_an_uninterrupted_run(
    params_file: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "MRCNF_RUNS": str(tmp_path / "straight")}
    subprocess.run(_train_command(params_file), env=env, check=True, capture_output=True)

    env = {**os.environ, "MRCNF_RUNS": str(tmp_path / "killed")}
    killed_dir = tmp_path / "killed" / "tiny" / "cifar10-2res-small"
    process = subprocess.Popen(_train_command(params_file), env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        metrics = killed_dir / "train_metrics.tsv"
        if metrics.exists() and len(metrics.read_text().splitlines()) > 11:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    assert process.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    interrupted_at = torch.load(RunLayout(killed_dir).checkpoint(), weights_only=True)["state"][
        "iteration"
    ]
    assert 0 < interrupted_at < 30
    subprocess.run(_train_command(params_file), env=env, check=True, capture_output=True)

    straight_dir = tmp_path / "straight" / "tiny" / "cifar10-2res-small"
    assert _metrics(killed_dir) == _metrics(straight_dir)
    assert len(_metrics(straight_dir)) == 30
    straight = torch.load(RunLayout(straight_dir).checkpoint(), weights_only=True)
    resumed = torch.load(RunLayout(killed_dir).checkpoint(), weights_only=True)
    for name, tensor in straight["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), name


@pytest.mark.slow
def test_forty_iterations_on_mnist_lower_the_training_bpd_markedly(tmp_path: Path) -> None:
    smoke = load_params(REPO / "params.yaml").experiment("cifar10-2res-small", profile="smoke")
    training = dataclasses.replace(smoke.training, max_iterations=40)
    summary = train(dataclasses.replace(smoke, training=training), run_dir=tmp_path, device=CPU)
    bpd = [float(row["bpd"]) for row in _metrics(tmp_path)]
    assert (summary.iterations, len(bpd)) == (40, 40)
    assert sum(bpd[-5:]) / 5 < bpd[0] - 2.0, bpd
    assert RunLayout(tmp_path).checkpoint("best").exists()


def test_truncated_checkpoint_is_reported_and_left_on_disk(
    params_file: Path, tmp_path: Path
) -> None:
    experiment = load_params(params_file).experiment("cifar10-2res-small", profile="tiny")
    last = RunLayout(tmp_path).checkpoint()
    last.parent.mkdir(parents=True)
    last.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CheckpointError, match=r"corrupt or unreadable.*left untouched") as error:
        train(experiment, run_dir=tmp_path, device=CPU)
    assert "\n" not in str(error.value)
    assert last.read_bytes() == b"PK\x03\x04 truncated"


def test_checkpoint_of_another_architecture_is_refused(params_file: Path, tmp_path: Path) -> None:
    small = load_params(params_file).experiment("cifar10-2res-small", profile="tiny")
    train(small, run_dir=tmp_path, device=CPU)
    bigger = dataclasses.replace(small, model=dataclasses.replace(small.model, blocks=2))
    with pytest.raises(CheckpointError, match=r"model\.blocks"):
        train(bigger, run_dir=tmp_path, device=CPU)


def test_a_raised_limit_and_other_checkpoint_intervals_let_a_run_resume(
    params_file: Path, tmp_path: Path
) -> None:
    experiment = load_params(params_file).experiment("cifar10-2res-small", profile="tiny")
    train(experiment, run_dir=tmp_path, device=CPU)
    longer = dataclasses.replace(
        experiment,
        training=dataclasses.replace(
            experiment.training, max_iterations=32, checkpoint_every_minutes=1.0
        ),
    )
    assert train(longer, run_dir=tmp_path, device=CPU).iterations == 32


def test_time_budget_stops_training(params_file: Path, tmp_path: Path) -> None:
    experiment = load_params(params_file).experiment("cifar10-2res-small", profile="tiny")
    budget = dataclasses.replace(experiment.training, time_budget_hours=1e-9)
    summary = train(dataclasses.replace(experiment, training=budget), run_dir=tmp_path, device=CPU)
    assert (summary.stopped_by, summary.iterations) == ("time_budget", 1)


def test_checkpoint_of_the_previous_format_resumes_and_evaluates(tmp_path: Path) -> None:
    # Written before settings had defaults and the configuration was versioned: 2 iterations of
    # this profile's cifar10-2res-small on 8×8 MNIST.
    profile = tiny_profile(
        limit_train=96, limit_test=32, max_iterations=4, checkpoint_every_iterations=2
    )
    # The model settings of the time, since changed in params.yaml.
    profile["all"]["model"]["latent_noise"] = "standard"
    profile["all"].setdefault("solver", {}).setdefault("train", {})["first_step"] = None
    params = tmp_path / "params.yaml"
    params.write_text(params_with_profile("tiny", profile))
    experiment = load_params(params).experiment("cifar10-2res-small", profile="tiny")
    layout = RunLayout(tmp_path / "run")
    layout.checkpoints.mkdir(parents=True)
    shutil.copy(FIXTURES / "v1_checkpoint" / "last.pt", layout.checkpoint())
    assert torch.load(layout.checkpoint(), weights_only=True)["state"]["iteration"] == 2

    assert train(experiment, run_dir=layout.root, device=CPU).iterations == 4
    result = evaluate_run(experiment, run_dir=layout.root, device=CPU)
    assert result.num_images == 32 and 0 < result.bpd < 20


def test_evaluation_reports_consistent_bpd_terms_and_both_solver_endings(
    params_file: Path, tmp_path: Path
) -> None:
    experiment = load_params(params_file).experiment("cifar10-3res-small", profile="tiny")
    train(experiment, run_dir=tmp_path, device=CPU)
    result = evaluate_run(experiment, run_dir=tmp_path, device=CPU)
    assert result.num_images == 64
    assert sum(result.bpd_per_resolution) + 8 == pytest.approx(result.bpd, abs=1e-6)
    assert abs(result.bpd - result.bpd_bin_centre) < 0.5
    stored = BpdResult.read(RunLayout(tmp_path).eval_bpd)
    # params.yaml's evaluation solver steps past t = 1 and interpolates back (torchdiffeq's way).
    assert stored.exact_end is False
    assert stored.bpd == stored.bpd_interpolated_end == result.bpd
    assert stored.bpd_exact_end is not None and stored.bpd_exact_end != stored.bpd


def test_missing_dataset_is_one_line_from_the_command_line(tmp_path: Path) -> None:
    env = {**os.environ, "MRCNF_DATA_ROOT": str(tmp_path / "empty"), "MRCNF_RUNS": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "repro", "train", "cifar10-2res-small", "--profile", "paper"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "CIFAR10" in lines[0] and "not found" in lines[0], result.stderr


def test_warmup_is_linear_then_constant() -> None:
    rates = [learning_rate(i, base=1e-3, warmup=4) for i in range(6)]
    assert rates == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3])


def test_epoch_order_is_a_seeded_permutation() -> None:
    first = epoch_order(50, seed=29, epoch=3)
    assert torch.equal(first, epoch_order(50, seed=29, epoch=3))
    assert not torch.equal(first, epoch_order(50, seed=29, epoch=4))
    assert sorted(first.tolist()) == list(range(50))


def test_metrics_log_drops_rows_after_the_checkpoint_and_rows_cut_short(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path / "metrics.tsv")
    for iteration in (1, 2, 3):
        log.append({"iteration": iteration, "bpd": 1.0 / iteration})
    with log.path.open("a") as file:
        file.write("1\t")  # a process killed while writing iteration 1x
    log.truncate(2)
    assert [row["iteration"] for row in log.rows()] == ["1", "2"]
    assert log.last_value("bpd") == 0.5


def test_out_of_gpu_memory_is_one_line_naming_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from repro.cli import main

    def exhausted(*args: object, **kwargs: object) -> None:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB\n...")

    monkeypatch.setattr("repro.train.train", exhausted)
    result = CliRunner().invoke(main, ["train", "cifar10-2res-small", "--profile", "smoke"])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "solver.train.adjoint: true" in lines[0], result.output


def test_a_setting_absent_from_a_stored_configuration_takes_its_default(params_file: Path) -> None:
    experiment = load_params(params_file).experiment("cifar10-2res-small", profile="tiny")
    stored = experiment.to_dict()
    del stored["model"]["divergence"]  # as if written before the setting existed
    stored["model"]["retired_setting"] = 1  # as if the setting were since removed
    payload = {"config": stored}
    check_resumable(payload, experiment, Path("last.pt"))  # the default: hutchinson
    model = dataclasses.replace(experiment.model, divergence="exact")
    exact = dataclasses.replace(experiment, model=model)
    with pytest.raises(CheckpointError, match=r"model\.divergence='hutchinson' \(now 'exact'\)"):
        check_resumable(payload, exact, Path("last.pt"))


@pytest.mark.slow
def test_resuming_under_other_numerics_is_refused_unless_asked_and_then_recorded(
    tmp_path: Path,
) -> None:
    def run(max_iterations: int, *options: str) -> subprocess.CompletedProcess[str]:
        profile = tiny_profile(
            limit_train=96,
            limit_test=32,
            max_iterations=max_iterations,
            checkpoint_every_iterations=2,
        )
        (tmp_path / "params.yaml").write_text(params_with_profile("tiny", profile))
        command = [*_train_command(tmp_path / "params.yaml"), *options]
        env = {**os.environ, "MRCNF_RUNS": str(tmp_path / "runs")}
        return subprocess.run(command, env=env, capture_output=True, text=True)

    layout = RunLayout(tmp_path / "runs" / "tiny" / "cifar10-2res-small")
    assert run(2).returncode == 0
    before = layout.checkpoint().read_bytes()

    refused = run(4, "--tf32")
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert refused.returncode == 1 and len(lines) == 1, refused.stderr
    assert "tf32=False (now True)" in lines[0] and "--allow-numerics-change" in lines[0]
    assert layout.checkpoint().read_bytes() == before

    assert run(4, "--tf32", "--allow-numerics-change").returncode == 0
    spans = TrainSummary.read(layout.train_summary).numerics_history
    assert [(s.from_iteration, s.numerics.tf32) for s in spans] == [(0, False), (2, True)]
