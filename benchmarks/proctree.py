"""Peak memory of a process tree, for benchmarks that run the CLI as a subprocess.

``/usr/bin/time`` and ``getrusage`` give the largest single process; a pipeline of tools
(minimap2 | samtools) or a pool of workers needs the sum over the tree at each moment.
"""

from __future__ import annotations

import contextlib
import subprocess

import psutil


def tree_memory(root: psutil.Process, metric: str = "rss") -> int:
    """Bytes held now by ``root`` and its descendants: ``rss``, or ``pss`` (shared pages split
    between the processes that map them, so forked workers are not counted twice)."""
    total = 0
    with contextlib.suppress(psutil.Error):
        for p in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                info = p.memory_full_info() if metric == "pss" else p.memory_info()
                total += getattr(info, metric)
    return total


def wait_with_peak(proc: subprocess.Popen, metric: str = "rss", interval_s: float = 0.1) -> int:
    """Wait for ``proc`` to exit; the largest :func:`tree_memory` seen every ``interval_s``."""
    peak = 0
    root = psutil.Process(proc.pid)
    while True:
        peak = max(peak, tree_memory(root, metric))
        try:
            proc.wait(timeout=interval_s)
            return peak
        except subprocess.TimeoutExpired:
            continue
