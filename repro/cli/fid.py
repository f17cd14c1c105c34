"""``repro fid``: FID and KID of any images against any registered dataset split."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from mrcnf.bounds import Interval
from repro.cli.common import BATCH_SIZE, DEVICE, console, device_for, int_range, user_errors

# FID compares covariances: 2 images at least.
REFERENCE_COUNT = int_range(Interval(low=2))


@click.command(name="fid")
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--reference",
    required=True,
    metavar="DATASET:SPLIT",
    help="The dataset split to compare with, e.g. cifar10:train or mnist:test.",
)
@click.option(
    "--reference-images",
    type=REFERENCE_COUNT,
    default=None,
    help="Compare with the split's first N images (default: all of it). Its statistics are "
    "cached, as the FID stages' are.",
)
@click.option(
    "--image-size",
    type=click.IntRange(min=1),
    default=None,
    help="Side the reference images are block-averaged to, as the data loader does (its native "
    "side over a power of two; default: the images' own side).",
)
@click.option(
    "--batch-size",
    type=BATCH_SIZE,
    default=64,
    help="Images per Inception pass (no effect on FID).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write the result, with its provenance, as JSON to this file.",
)
@DEVICE
@user_errors
def fid_images(
    path: Path,
    reference: str,
    reference_images: int | None,
    image_size: int | None,
    batch_size: int,
    out: Path | None,
    device: str,
) -> None:
    """FID and KID of the images at PATH against a dataset split.

    PATH is an .npz file whose 'images' array is uint8 N×C×H×W (as repro sample writes),
    N×H×W×C or N×H×W (C = 1 or 3), or a folder of grey or RGB .png files of one size. FID and KID
    are computed as the FID stages compute them (torch-fidelity's Inception features).

    \b
    Examples:
      repro sample cifar10-2res-small --profile smoke    # writes .../samples/T1.0.npz
      repro fid runs/smoke/cifar10-2res-small/samples/T1.0.npz --reference mnist:train \\
          --reference-images 256
      repro fid my_samples/ --reference cifar10:train --out fid.json
    """
    from repro.fid_images import compare_images, parse_reference
    from repro.files import write_json
    from repro.outputs import check_writable

    dataset, split = parse_reference(reference)
    if out is not None:
        check_writable(out)
    result = compare_images(
        path,
        dataset=dataset,
        split=split,
        reference_images=reference_images,
        image_size=image_size,
        batch_size=batch_size,
        device=device_for(device, tf32=False),
    )
    table = Table(title=f"{path} against {dataset}:{split}")
    for column in ("images", "reference", "FID", "KID"):
        table.add_column(column, justify="right")
    side = result.reference_image_size
    table.add_row(
        "×".join(map(str, result.image_shape)),
        f"{result.reference.count:,} at {side}×{side}",
        f"{result.fid:.2f}",
        f"{result.kid_mean:.4f} (sd {result.kid_std:.4f})",
    )
    Console().print(table)
    if out is not None:
        write_json(out, result.to_json())
        console.print(f"[green]wrote[/green] {out}")
