"""The fault classes a careful or unlucky user meets, driven through the command line as a user
would: a second writer, a full disk, NaN and out-of-range settings, checkpoints of another run or
damaged, results that would be replaced by lesser ones, a folder where a file goes. Each case ends
with exit status 1, one line naming the path or key and the fix, and every file that existed
before byte-identical."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

from repro.cli import main
from repro.fid import torch_fidelity_cache_path
from repro.layout import ProfileLayout
from repro.locks import exclusive
from tests.profiles import params_with_profile, tiny_profile

TINY = tiny_profile(limit_train=64, limit_test=16, max_iterations=2, checkpoint_every_iterations=1)
EXPERIMENT = "cifar10-2res-small"


def _run(*args: str, experiment_options: bool = True) -> object:
    """``repro ARGS`` (with the workspace's params.yaml and the tiny profile, where it takes
    them)."""
    options = ["--params", "params.yaml", "--profile", "tiny"] if experiment_options else []
    return CliRunner().invoke(main, [*args, *options])


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A workspace holding params.yaml and a tiny run trained, evaluated and sampled."""
    root = tmp_path_factory.mktemp("workspace")
    (root / "params.yaml").write_text(params_with_profile("tiny", TINY))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("MRCNF_RUNS", str(root / "runs"))
        for command in (["train", EXPERIMENT], ["eval", "bpd", EXPERIMENT]):
            assert _run(*command).exit_code == 0
        assert _run("sample", EXPERIMENT, "--num", "4", "--temperature", "1.0").exit_code == 0
    yield root


@pytest.fixture
def workspace(trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the trained workspace, as the current folder and ``$MRCNF_RUNS``."""
    root = tmp_path / "workspace"
    shutil.copytree(trained, root)
    monkeypatch.chdir(root)
    monkeypatch.setenv("MRCNF_RUNS", str(root / "runs"))
    return root


def _run_folder(root: Path) -> Path:
    return root / "runs" / "tiny" / EXPERIMENT


def _snapshot(root: Path) -> dict[str, str]:
    """The sha256 of every file under ``root`` but the lock files (which hold no result)."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.name.endswith(".lock")
    }


def _refused(
    root: Path,
    args: list[str],
    *expected: str,
    after_compute: bool = False,
    experiment_options: bool = True,
) -> str:
    """Run the command; assert exit 1, one error line holding every ``expected`` text, and every
    file as it was. Returns the line.

    Before any compute the error is the only output; ``after_compute``, it is the last line,
    after the progress shown until the failure.
    """
    before = _snapshot(root)
    result = _run(*args, experiment_options=experiment_options)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1, result.output
    errors = [line for line in lines if line.startswith("error:")]
    assert errors == lines[-1:] if after_compute else errors == lines, result.output
    for text in expected:
        assert text in lines[-1], lines[-1]
    assert _snapshot(root) == before
    return lines[-1]


def _edit_params(root: Path, *changes: tuple[str, object]) -> None:
    """Set dotted keys of the tiny profile's ``all`` section in the workspace's params.yaml."""
    params = yaml.safe_load((root / "params.yaml").read_text())
    for dotted, value in changes:
        section = params["profiles"]["tiny"]["all"]
        *parents, key = dotted.split(".")
        for name in parents:
            section = section.setdefault(name, {})
        section[key] = value
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


# Concurrent writers ---------------------------------------------------------------------------


def _holder(guarded: Path, *, folder: bool) -> subprocess.Popen:
    """Another process holding ``guarded``'s lock until killed."""
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from repro.locks import exclusive
        with exclusive(Path({str(guarded)!r}), folder={folder}):
            print("held", flush=True)
            time.sleep(600)
    """)
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


@pytest.mark.parametrize(
    ("command", "guarded", "folder"),
    [
        (["train", EXPERIMENT], "", True),
        (["eval", "bpd", EXPERIMENT], "eval_bpd.json", False),
        (["sample", EXPERIMENT, "--num", "4"], "samples/T1.0.npz", False),
    ],
)
def test_a_second_writer_is_refused_naming_the_holder_and_a_killed_holder_leaves_no_lock(
    workspace: Path, command: list[str], guarded: str, folder: bool
) -> None:
    target = _run_folder(workspace) / guarded if guarded else _run_folder(workspace)
    holder = _holder(target, folder=folder)
    try:
        _refused(workspace, command, "is being written by process", str(holder.pid), "wait")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with exclusive(target, folder=folder):  # the kernel released the killed holder's lock
        pass


# Full disk ------------------------------------------------------------------------------------


def _no_space(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_while_writing_samples_keeps_the_previous_samples(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(np, "savez_compressed", _no_space)
    line = _refused(
        workspace,
        ["sample", EXPERIMENT, "--num", "4"],
        "T1.0.npz",
        "No space left on device",
        after_compute=True,
    )
    assert "free some disk space" in line


def test_a_full_disk_while_saving_a_checkpoint_keeps_the_previous_checkpoint(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoints = _run_folder(workspace) / "checkpoints"
    before = _snapshot(checkpoints)
    _edit_params(workspace, ("training.max_iterations", 3))  # a limit may grow on resume
    monkeypatch.setattr(torch, "save", _no_space)
    result = _run("train", EXPERIMENT)
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert result.exit_code == 1 and errors == lines[-1:], result.output
    assert "last.pt" in errors[0] and "No space left on device" in errors[0]
    # The metrics log may hold the unsaved iteration's row: a resume truncates it.
    assert _snapshot(checkpoints) == before


def test_a_folder_where_the_samples_go_is_refused_before_sampling(workspace: Path) -> None:
    (workspace / "out.npz").mkdir()
    _refused(workspace, ["sample", EXPERIMENT, "--out", "out"], "out.npz", "is a directory")


# Settings -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [("--temperature", "nan"), ("--temperature", "inf"), ("--temperature", "-1"), ("--num", "0")],
)
def test_nan_and_out_of_range_options_are_one_line(
    workspace: Path, option: str, value: str
) -> None:
    _refused(workspace, ["sample", EXPERIMENT, option, value], option)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("training.max_iterations", -1),
        ("training.batch_size", 0),
        ("optimizer.lr", float("nan")),
        ("loss.kinetic_energy", -0.01),
        ("fid.temperatures", [0.5, float("inf")]),
        ("solver.eval.atol", 0.0),
    ],
)
def test_nan_and_out_of_range_settings_are_one_line_naming_the_key(
    workspace: Path, key: str, value: object
) -> None:
    _edit_params(workspace, (key, value))
    for command in (["train", EXPERIMENT], ["eval", "bpd", EXPERIMENT]):
        _refused(workspace, command, key)


def test_an_unknown_profile_is_refused_and_nothing_is_written(workspace: Path) -> None:
    for command in (["train", EXPERIMENT], ["table", "--id", "5", "--write"], ["params"]):
        result = CliRunner().invoke(main, [*command, "--profile", "nosuch"])
        assert result.exit_code == 1 and "unknown profile 'nosuch'" in result.output
    assert not (workspace / "runs" / "nosuch").exists()
    assert not (workspace / "tables" / "nosuch").exists()


# Inception weights -------------------------------------------------------------------------------


def test_weights_whose_name_disagrees_with_their_hash_are_refused_and_left_untouched(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MRCNF_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(workspace / "torch"))
    cached = torch_fidelity_cache_path()  # named after the sha256 of the official file
    cached.parent.mkdir(parents=True)
    torch.save({"fc.weight": torch.zeros(1008, 2048)}, cached)
    _refused(
        workspace,
        ["assets", "inception"],
        str(cached),
        "repro assets inception",
        experiment_options=False,
    )


# Checkpoints ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "command"),
    [
        ("training.seed", 7, ["train", EXPERIMENT]),
        ("training.batch_size", 16, ["train", EXPERIMENT]),
        ("solver.train.atol", 1e-4, ["train", EXPERIMENT]),
        ("model.width", 16, ["train", EXPERIMENT]),
        ("model.width", 16, ["eval", "bpd", EXPERIMENT]),
        ("data.limit_train", 32, ["sample", EXPERIMENT, "--num", "4"]),
    ],
)
def test_a_checkpoint_of_other_settings_is_refused_naming_the_keys(
    workspace: Path, key: str, value: object, command: list[str]
) -> None:
    _edit_params(workspace, (key, value))
    _refused(
        workspace,
        command,
        "belongs to another run",
        key,
        "move the checkpoint away" if command[0] == "train" else "restore",
    )


def test_a_checkpoint_of_another_experiment_is_refused(workspace: Path) -> None:
    other = ProfileLayout("tiny").run("cifar10-3res-small").checkpoint("last")
    other.parent.mkdir(parents=True)
    shutil.copy(_run_folder(workspace) / "checkpoints" / "last.pt", other)
    _refused(
        workspace,
        ["train", "cifar10-3res-small"],
        "id='cifar10-2res-small' (now 'cifar10-3res-small')",
        "model.resolutions=2 (now 3)",
    )


@pytest.mark.parametrize("damage", ["missing_entry", "wrong_shape", "missing_tensor"])
def test_a_damaged_checkpoint_is_one_line_and_left_untouched(workspace: Path, damage: str) -> None:
    path = _run_folder(workspace) / "checkpoints" / "last.pt"
    payload = torch.load(path, weights_only=True)
    if damage == "missing_entry":
        del payload["optimizer"]
    else:
        name = next(iter(payload["model"]))
        if damage == "missing_tensor":
            del payload["model"][name]
        else:
            payload["model"][name] = torch.zeros(3, 3, 3)
    torch.save(payload, path)
    expected = "lacks optimizer" if damage == "missing_entry" else "does not fit the model"
    _refused(workspace, ["train", EXPERIMENT], str(path.relative_to(workspace)), expected)


# Results --------------------------------------------------------------------------------------


def test_a_result_of_more_images_is_not_replaced_without_overwrite(workspace: Path) -> None:
    result = _run_folder(workspace) / "eval_bpd.json"
    stored = json.loads(result.read_text())
    stored["num_images"] = 10_000
    result.write_text(json.dumps(stored))
    _refused(workspace, ["eval", "bpd", EXPERIMENT], "num_images 16 (it has 10000)", "--overwrite")
    assert _run("eval", "bpd", EXPERIMENT, "--overwrite").exit_code == 0
    assert json.loads(result.read_text())["num_images"] == 16
