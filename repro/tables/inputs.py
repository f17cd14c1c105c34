"""What every table (and the FID figure) is built from, gathered once: :class:`TableInputs`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

from repro.config import Experiment, Params
from repro.layout import ProfileLayout
from repro.published import Published, load_published
from repro.tables.compare import TableConfigError, check_tolerances
from repro.tables.results import Results


@dataclass(frozen=True)
class TableInputs:
    """The one input of every table builder.

    Attributes:
        experiments: Experiment id -> its configuration at the ``paper`` profile (see
            :meth:`Params.paper_experiments`); an experiment fills the Table 5 cell its
            ``paper.table5`` names.
        table7: Experiment id -> the Table 7 model (row) it stands for.
        layout: Where the tabulated profile's results are; :attr:`results` reads them.
        comparable: Whether that profile's numbers are compared with the paper's.
        tolerances: When a reproduced number counts as reproducing the printed one: ``bpd``
            (absolute), ``fid_relative`` and ``hours_relative``.
        published: The paper's numbers.

    Raises:
        TableConfigError: A tolerance is missing or negative, ``table7`` names an experiment
            that is not in ``experiments`` or a model that is not text, or an experiment's
            ``training.init_from`` names one that is not in ``experiments``.
    """

    experiments: Mapping[str, Experiment]
    table7: Mapping[str, str]
    layout: ProfileLayout
    comparable: bool
    tolerances: Mapping[str, float]
    published: Published

    def __post_init__(self) -> None:
        # The tolerances and table7 are plain mappings of params.yaml, not typed settings.
        check_tolerances(self.tolerances)
        for experiment, model in self.table7.items():
            if experiment not in self.experiments:
                raise TableConfigError(f"table7 names unknown experiment {experiment!r}")
            if not isinstance(model, str):
                raise TableConfigError(f"table7.{experiment} is {model!r}, expected a model name")
        for experiment, spec in self.experiments.items():
            # A progressive run's hours are compared with its parent's added to them.
            parent = spec.training.init_from
            if parent is not None and parent not in self.experiments:
                raise TableConfigError(
                    f"experiments.{experiment}.training.init_from names {parent!r}, which is not "
                    "among the tabulated experiments"
                )

    @classmethod
    def from_params(
        cls, params: Params, *, profile: str, published: Published | None = None
    ) -> TableInputs:
        """The inputs of one profile's tables, from params.yaml and the published data.

        Raises:
            ConfigError: params.yaml is malformed, or ``profile`` is not one of its profiles.
            TableConfigError: Its tolerances or ``table7`` are malformed.
            PublishedDataError: The published data are malformed.
        """
        return cls(
            experiments=params.paper_experiments(),
            table7=params.table7,
            layout=ProfileLayout(profile),
            comparable=params.comparable(profile),
            tolerances=params.tolerances,
            published=load_published() if published is None else published,
        )

    @property
    def profile(self) -> str:
        """The tabulated profile."""
        return self.layout.profile

    @cached_property
    def results(self) -> Results:
        """The profile's results, shared by every table built from these inputs.

        Each file is read once however many tables need it, so build anew from fresh inputs after
        results change.
        """
        return Results(self.layout)
