"""L(x): an image's lossless code length in bits per dimension, the complexity estimate of
S = bpd − L(x) (docs/method.md §8).

The paper follows Serrà et al. (2020), who compressed with FLIF; FLIF is not packaged, and JPEG
XL's lossless (modular) mode is its successor. Each image is encoded alone, as a bare JPEG XL
codestream (no ISO BMFF container), and the whole codestream counts, its header included: a
constant 32×32 RGB image, whose pixels cost almost nothing, takes 18 bytes in all (0.047 bits
per dimension; 19 bytes for a 16×16 grey one), nearly the same for every image of one size.
libjxl's output depends on its version, pinned through imagecodecs in pyproject.toml and recorded
with every result (:func:`codec_versions`); it does not depend on the number of threads.
"""

from __future__ import annotations

import imagecodecs
import numpy as np
import torch

from repro.errors import ReproError

BITS_PER_BYTE = 8


class CompressorInputError(ReproError):
    """Images the compressor cannot take (one line naming what they should be)."""


def code_length_bits_per_dim(images: torch.Tensor, *, effort: int = 7) -> torch.Tensor:
    """Each image's lossless JPEG XL code length, in bits per dimension.

    Args:
        images: uint8 N×C×H×W images, C = 1 (grey) or 3 (RGB), on any device.
        effort: libjxl's effort, 1 (fastest) to 10 (densest); 7 is its default.

    Returns:
        float64 N: the bytes of image i's whole codestream × 8 / (C·H·W).

    Raises:
        CompressorInputError: The images are not uint8 N×C×H×W with 1 or 3 channels.
    """
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] not in (1, 3):
        raise CompressorInputError(
            f"the compressor takes uint8 N×C×H×W images with 1 or 3 channels, got "
            f"{images.dtype} {tuple(images.shape)}"
        )
    dimensions = images[0].numel() if len(images) else 1
    # JPEG XL takes H×W (grey) or H×W×C (interleaved) arrays.
    pixels = images.cpu()
    interleaved = pixels[:, 0] if pixels.shape[1] == 1 else pixels.permute(0, 2, 3, 1)
    lengths = [len(_encode(np.ascontiguousarray(image), effort)) for image in interleaved.numpy()]
    return torch.tensor(lengths, dtype=torch.float64) * BITS_PER_BYTE / dimensions


def _encode(image: np.ndarray, effort: int) -> bytes:
    return imagecodecs.jpegxl_encode(image, lossless=True, effort=effort, usecontainer=False)


def codec_versions() -> dict[str, str]:
    """The versions that fix the code lengths: imagecodecs and the libjxl it bundles."""
    # jpegxl_version() reads "libjxl 0.11.1".
    libjxl = imagecodecs.jpegxl_version().removeprefix("libjxl ")
    return {"imagecodecs": imagecodecs.__version__, "libjxl": libjxl}
