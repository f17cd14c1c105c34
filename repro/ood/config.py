"""The ``ood`` section of params.yaml (a profile may override it in ``profiles.<p>.ood``).

Every number declares its range on its type, as the experiment's sections do
(:mod:`repro.experiment`); nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from mrcnf.bounds import Interval, PositiveInt, check_ranges
from repro.experiment import BatchSize, Seed
from repro.ood.sets import OOD_SETS

# libjxl's effort levels: 1 (fastest) to 10 (slowest, densest); 7 is its default.
JPEGXL_EFFORTS = Interval(low=1, high=10)


@dataclass(frozen=True)
class CompressorConfig:
    """The lossless compressor whose code length L(x) corrects the bpd (docs/method.md §8)."""

    codec: Literal["jpegxl"] = "jpegxl"
    """JPEG XL, lossless, as a bare codestream (no container): FLIF's successor."""
    effort: Annotated[int, JPEGXL_EFFORTS] = 7

    def __post_init__(self) -> None:
        check_ranges(self)


@dataclass(frozen=True)
class OodConfig:
    """How ``repro eval ood`` scores a model's test images against out-of-distribution ones."""

    datasets: list[str]
    """Keys of ``repro.ood.sets.OOD_SETS``, at most one per published set (column)."""
    num_images: PositiveInt | None = None
    """The first this many images of every set, the in-distribution test split's included (null:
    whole splits, that test split within ``data.limit_test``)."""
    batch_size: BatchSize = 200
    seed: Seed = 0
    """Dequantisation noise, Hutchinson probes and generated sets (e.g. noise)."""
    dequantization: Literal["uniform", "bin_centre"] = "uniform"
    compressor: CompressorConfig = CompressorConfig()

    def __post_init__(self) -> None:
        check_ranges(self)
        if not self.datasets:
            raise ValueError("datasets names no set: name at least one")
        unknown = [name for name in self.datasets if name not in OOD_SETS]
        if unknown:
            raise ValueError(
                f"datasets names unknown set {unknown[0]!r}; use any of {', '.join(OOD_SETS)}"
            )
        columns = [OOD_SETS[name].column for name in self.datasets]
        twice = sorted({column for column in columns if columns.count(column) > 1})
        if twice:
            raise ValueError(f"datasets names two sets for {twice[0]}'s columns: keep one")
