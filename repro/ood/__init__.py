"""Out-of-distribution detection as the paper reports it (docs/method.md §8): models trained on
CIFAR10 score the test images of other datasets by their bits per dimension and by the
complexity-corrected S = bpd − L(x), L a lossless compressor's code length, and each score's
auROC separates the two.

``config`` (the ``ood`` section of params.yaml) and ``sets`` (the registry of sets) import no
torch, so params.yaml loads without it; ``compression``, ``scores``, ``evaluate`` and ``plot``
compute and draw.
"""
