"""Where every output lives: one profile's folders and one run's files, each path defined once.

``dvc.yaml`` spells the same paths with ``${profile}``, ``${key}`` and ``${item.temperature}``
(DVC needs them literally); a test keeps the two in step. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from repro.paths import runs_root

CHECKPOINTS = ("last", "best")
TABLES_ROOT = Path("tables")
# Every table the suite rebuilds, in the order `repro compare` shows them: the paper's numbered
# tables, then its further analyses (repro.tables.TABLES holds a builder for each).
TABLE_IDS = ("5", "6", "7", "ablation", "calibration", "ood")


def table_stem(table_id: str) -> str:
    """The file name of a table without its suffix: ``table5``, or ``table_ood`` for a table the
    paper does not number."""
    return f"table{table_id}" if table_id.isdigit() else f"table_{table_id}"


def bench_result(experiment_id: str) -> Path:
    """Where ``repro bench`` writes its measurements of an experiment."""
    return runs_root() / "bench" / f"{experiment_id}.json"


@dataclass(frozen=True)
class RunLayout:
    """The files of one experiment's run: ``runs/<profile>/<experiment>/``."""

    root: Path

    @property
    def config(self) -> Path:
        """The resolved configuration the run was trained with."""
        return self.root / "config.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def checkpoint(self, which: str = "last") -> Path:
        """The ``last`` or ``best`` checkpoint."""
        return self.checkpoints / f"{which}.pt"

    @property
    def train_metrics(self) -> Path:
        """Per-iteration training metrics (TSV, plotted by DVC)."""
        return self.root / "train_metrics.tsv"

    @property
    def train_summary(self) -> Path:
        return self.root / "train_summary.json"

    @property
    def eval_bpd(self) -> Path:
        return self.root / "eval_bpd.json"

    @property
    def fid_results(self) -> Path:
        """The FID results and samples of params.yaml's temperatures and sample count, which
        the run's FID stage writes as a whole."""
        return self.root / "fid"

    @property
    def fid_metrics(self) -> Path:
        """The numbers alone of every result in :attr:`fid_results` (``dvc metrics show``)."""
        return self.root / "fid_metrics"

    @property
    def fid_extra(self) -> Path:
        """FID results off params.yaml's temperatures or sample count, kept apart so that the
        FID stage, which rewrites :attr:`fid_results`, never removes them."""
        return self.root / "fid_extra"

    def fid(self, temperature: float, *, num_samples: int | None = None) -> Path:
        """The FID of one temperature, e.g. ``fid/T0.7.json``; of a request off params.yaml's
        protocol (``num_samples`` given), ``fid_extra/T0.7_n100.json``.

        Python's shortest float text (``0.7``, ``1.0``) is also how DVC writes a temperature,
        so the names agree with what params.yaml lists.
        """
        if num_samples is None:
            return self.fid_results / f"T{float(temperature)}.json"
        return self.fid_extra / f"T{float(temperature)}_n{num_samples}.json"

    def fid_samples(self, temperature: float, *, num_samples: int | None = None) -> Path:
        """Stem (``.npz``, ``.png``) of the samples behind :meth:`fid`."""
        result = self.fid(temperature, num_samples=num_samples)
        return result.with_name(f"{result.name.removesuffix('.json')}_samples")

    def samples(self, temperature: float) -> Path:
        """Default stem of ``repro sample``'s output."""
        return self.root / "samples" / f"T{float(temperature)}"

    @property
    def shuffled_bpd(self) -> Path:
        """The bpd of the test images shuffled in k×k patches (``repro eval shuffled-bpd``)."""
        return self.root / "shuffled_bpd.json"

    @property
    def ood(self) -> Path:
        """Out-of-distribution detection's result (``repro eval ood``)."""
        return self.root / "ood.json"

    @property
    def ood_scores(self) -> Path:
        """Every image's bpd, level terms and code length behind :attr:`ood` (``.npz``)."""
        return self.root / "ood_scores.npz"


@dataclass(frozen=True)
class ProfileLayout:
    """The outputs of one profile: its runs under ``runs/<profile>/``, its tables."""

    profile: str

    @property
    def runs(self) -> Path:
        return runs_root() / self.profile

    def run(self, experiment_id: str) -> RunLayout:
        return RunLayout(self.runs / experiment_id)

    @property
    def param_counts(self) -> Path:
        return self.runs / "param_counts.json"

    @property
    def settings(self) -> Path:
        """What each stage reads from params.yaml, resolved (``repro resolve``)."""
        return self.runs / "settings"

    def stage_settings(self, experiment_id: str | None, stage: str) -> Path:
        """One stage's settings: ``settings/<experiment>/<stage>.json``, or
        ``settings/<stage>.json`` for a stage of no experiment."""
        folder = self.settings if experiment_id is None else self.settings / experiment_id
        return folder / f"{stage}.json"

    @property
    def tables(self) -> Path:
        """The regenerated tables and figures (relative, as DVC tracks them)."""
        return TABLES_ROOT / self.profile

    @property
    def fid_plot(self) -> Path:
        return self.tables / "fid_vs_temperature.png"

    @property
    def calibration(self) -> Path:
        """The FID of the shuffled test split against the training split (``repro eval
        calibration``)."""
        return self.runs / "calibration" / "fid_shuffled.json"

    @property
    def shuffled_bpd_plot(self) -> Path:
        """The Table 7 models' bpd of shuffled test images against the patch size."""
        return self.tables / "shuffled_bpd.png"

    def ood_histogram(self, experiment_id: str) -> Path:
        """Histograms of one model's in- and out-of-distribution bpd and S (``repro eval ood``)."""
        return self.tables / f"ood_{experiment_id}.png"
