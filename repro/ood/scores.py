"""Each image's scores and the auROC that separates two sets of them (numpy and scipy only).

The direction is the one the published values fit (docs/method.md §8): out-of-distribution
images are the positive class and a larger score counts as more out-of-distribution, for the bpd
and for S = bpd − L(x) alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import mannwhitneyu

from repro.ood.sets import OOD_SETS
from repro.results import OodSetScores

# The in-distribution images' name among the sets' (no key of OOD_SETS).
IN_DISTRIBUTION = "in_distribution"


@dataclass(frozen=True)
class ScoredImages:
    """Every image's scores, float64 arrays of one length N.

    Attributes:
        bpd: Bits per dimension.
        bpd_per_resolution: N×S: each level's term, finest first (with 8 added, a row sums to
            its bpd).
        code_length: L(x), the lossless code length in bits per dimension.
    """

    bpd: np.ndarray
    bpd_per_resolution: np.ndarray
    code_length: np.ndarray

    @property
    def s_score(self) -> np.ndarray:
        """S = bpd − L(x): the bpd less what a generic compressor already explains."""
        return self.bpd - self.code_length


def auroc(outside: ArrayLike, inside: ArrayLike) -> float:
    """The area under the ROC curve with ``outside`` the positive class and larger = positive.

    It is P(o > i) + ½·P(o = i) over all pairs of an outside score o and an inside score i: the
    Mann–Whitney U statistic of ``outside`` divided by the number of pairs. 1 separates the sets
    perfectly, 0.5 not at all, 0 perfectly the wrong way round. A NaN score gives NaN.

    Args:
        outside: Scores of the out-of-distribution images.
        inside: Scores of the in-distribution images.

    Returns:
        The auROC in [0, 1].

    Raises:
        ValueError: Either set is empty.
    """
    out, ins = np.asarray(outside, dtype=np.float64), np.asarray(inside, dtype=np.float64)
    if not (out.size and ins.size):
        raise ValueError(f"auROC needs scores in both sets, got {out.size} and {ins.size}")
    # The asymptotic method: the statistic is the same, and no exact p-value is computed.
    statistic = mannwhitneyu(out, ins, alternative="two-sided", method="asymptotic").statistic
    return float(statistic) / (out.size * ins.size)


def compare_sets(name: str, *, inside: ScoredImages, outside: ScoredImages) -> OodSetScores:
    """How well each score tells the set ``name``'s images from the in-distribution ones.

    Args:
        name: A key of :data:`repro.ood.sets.OOD_SETS`.
        inside: The in-distribution test images' scores.
        outside: The set's scores.

    Returns:
        The auROCs of the bpd, of S and of each level's term, and the set's mean bpd and L.
    """
    levels = inside.bpd_per_resolution.shape[1]
    return OodSetScores(
        column=OOD_SETS[name].column,
        name=name,
        description=OOD_SETS[name].description,
        num_images=len(outside.bpd),
        auroc_bpd=auroc(outside.bpd, inside.bpd),
        auroc_S=auroc(outside.s_score, inside.s_score),
        auroc_per_resolution=[
            auroc(outside.bpd_per_resolution[:, level], inside.bpd_per_resolution[:, level])
            for level in range(levels)
        ],
        bpd=float(outside.bpd.mean()),
        code_length=float(outside.code_length.mean()),
    )
