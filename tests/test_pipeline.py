"""The real DVC pipeline on a tiny profile: end to end, then up to date, then a minimal rerun."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from repro.layout import TABLE_IDS, table_stem
from tests.profiles import params_with_profile, tiny_profile

REPO = Path(__file__).resolve().parents[1]
PROJECT_FILES = ("mrcnf", "repro", "tables/published", "dvc.yaml", "params.yaml", ".dvcignore")

TINY = tiny_profile(
    limit_train=128,
    limit_test=32,
    max_iterations=3,
    checkpoint_every_iterations=3,
    fid={"num_samples": 8, "reference_images": 32, "batch_size": 8},
)


PIPELINE_EXPERIMENTS = (
    "cifar10-1res",
    "cifar10-2res-small",
    "cifar10-3res-small",
    "imagenet64-3res-small",
)


def _run(args: list[str], cwd: Path, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
    }
    env.pop("MRCNF_RUNS", None)
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def _new_project(root: Path, params: dict) -> None:
    """The project's files under ``root``, with ``params`` as params.yaml, in a git and DVC
    repository."""
    for name in PROJECT_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, root / name)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _run(["git", "init", "-q"], root)
    _run(["dvc", "init", "-q"], root)


def _changed_stages(root: Path) -> set[str]:
    status = json.loads(_run(["dvc", "status", "--json"], root).stdout or "{}")
    return set(status)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pipeline")
    params = yaml.safe_load(params_with_profile("tiny", TINY, select=True))
    # Table 7's experiments and the progressive one's parent, at two of Table 7's six
    # temperatures: every kind of stage still runs, in a third of the time.
    params["experiments"] = {name: params["experiments"][name] for name in PIPELINE_EXPERIMENTS}
    params["defaults"]["fid"]["temperatures"] = [1.0, 0.5]
    _new_project(root, params)
    _run(["dvc", "repro"], root)
    return root


def test_an_unknown_profile_stops_the_pipeline_before_anything_is_written(
    tmp_path: Path,
) -> None:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["profile"] = "nosuch"
    _new_project(tmp_path, params)
    result = _run(["dvc", "repro"], tmp_path, check=False)
    assert result.returncode != 0
    assert "unknown profile 'nosuch'" in result.stdout + result.stderr
    assert not (tmp_path / "runs").exists() and not (tmp_path / "tables" / "nosuch").exists()


@pytest.mark.slow
def test_pipeline_builds_every_table_and_the_fid_plot(project: Path) -> None:
    for table_id in TABLE_IDS:
        for suffix in ("md", "tex", "csv"):
            assert (project / "tables" / "tiny" / f"{table_stem(table_id)}.{suffix}").stat().st_size
    assert (project / "tables" / "tiny" / "fid_vs_temperature.png").stat().st_size > 0
    table6 = (project / "tables" / "tiny" / "table6.md").read_text()
    assert "1,107,876" in table6 and "5,096,040" in table6
    table5 = (project / "tables" / "tiny" / "table5.md").read_text()
    assert "[tiny profile: not comparable with the paper]" in table5
    fid = json.loads((project / "runs/tiny/cifar10-1res/fid/T0.5.json").read_text())
    assert fid["num_samples"] == 8 and fid["fid"] > 0


@pytest.mark.slow
def test_the_progressive_experiment_trains_its_finest_level_after_its_parent(
    project: Path,
) -> None:
    run = project / "runs/tiny/imagenet128-4res"
    summary = json.loads((run / "train_summary.json").read_text())
    assert (summary["init_from"], summary["trained_levels"]) == ("imagenet64-3res-small", [0])
    parent = project / "runs/tiny/imagenet64-3res-small/checkpoints/last.pt"
    assert parent.stat().st_mtime < (run / "checkpoints/last.pt").stat().st_mtime
    bpd = json.loads((run / "eval_bpd.json").read_text())
    assert len(bpd["bpd_per_resolution"]) == 4


@pytest.mark.slow
def test_second_repro_has_nothing_to_do(project: Path) -> None:
    assert _changed_stages(project) == set()
    assert "didn't change" in _run(["dvc", "repro"], project).stdout


# A changed file, stages it must mark stale, stages it must leave current (by name prefix).
CODE_CHANGES = (
    ("mrcnf/cnf.py", ("eval_bpd@cifar10-1res", "fid@"), ()),
    ("repro/sampling.py", ("fid@",), ("eval_bpd@", "train@")),
    ("repro/tables/render.py", ("table@5",), ("eval_bpd@", "fid@", "train@")),
)


@pytest.mark.slow
def test_a_change_to_code_marks_exactly_the_results_it_computes_stale(project: Path) -> None:
    assert _changed_stages(project) == set()
    for changed_file, stale, current in CODE_CHANGES:
        path = project / changed_file
        original = path.read_text()
        path.write_text(original + "\n# a change\n")
        try:
            changed = _changed_stages(project)
        finally:
            path.write_text(original)
        for prefix in stale:
            assert any(s.startswith(prefix) for s in changed), (changed_file, prefix, changed)
        for prefix in current:
            assert not any(s.startswith(prefix) for s in changed), (changed_file, prefix, changed)


TABLES = {f"table@{table_id}" for table_id in TABLE_IDS}
PLOTS = {"fid_plot", "shuffled_bpd_plot"}


@pytest.mark.slow
def test_changing_one_experiment_reruns_only_its_stages_and_the_tables(project: Path) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["experiments"]["imagenet64-3res-small"]["training"] = {"seed": 30}
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    # The parameter counts depend on every experiment's size, so the `experiments` section.
    assert _changed_stages(project) == {"resolve", "params", *TABLES}
    # Resolved, the change reaches the one stage that reads it (its evaluation follows its
    # checkpoints), and the tables and figures, which read every result.
    _run(["dvc", "repro", "resolve"], project)
    assert _changed_stages(project) == {"params", "train@imagenet64-3res-small", *TABLES, *PLOTS}


@pytest.mark.slow
def test_dvc_metrics_show_only_the_numbers_a_user_compares(project: Path) -> None:
    shown = json.loads(_run(["dvc", "metrics", "show", "--json"], project).stdout)
    files = next(iter(shown.values()))["data"]
    assert any(path.endswith("eval_bpd.metrics.json") for path in files)
    assert any("/fid_metrics/T0.5.json" in path for path in files)
    values = [value for data in files.values() for value in _leaves(data["data"])]
    assert values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def _leaves(data: object) -> list[object]:
    if isinstance(data, dict):
        return [leaf for value in data.values() for leaf in _leaves(value)]
    return [data]
