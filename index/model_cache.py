"""Folders built once into the model cache, never used half-written.

Converting or exporting a model takes half a minute and writes hundreds of megabytes. Each
build writes into a scratch folder that is renamed into place only when complete (marked by
a file), so an interrupted run never leaves a broken model behind, and the scratch folders of
killed runs are removed later.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)

COMPLETE_MARKER = "conversion-complete"
_SCRATCH_PREFIX = ".converting-"
# Scratch folders of builds killed this long ago are removed (a build takes under a minute).
_STALE_SCRATCH_SECONDS = 3600


def build_once(target: Path, build: Callable[[Path], None], what: str) -> Path:
    """Return `target`, first filling it with `build(folder)` unless a complete one exists."""
    if (target / COMPLETE_MARKER).exists():
        return target
    cache_dir = target.parent
    cache_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_scratch(cache_dir)
    logger.info("Preparing %s in %s (once, about 30 s)", what, target)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=_SCRATCH_PREFIX) as scratch:
        staging = Path(scratch) / "model"
        build(staging)
        (staging / COMPLETE_MARKER).write_text("ok\n")
        if (target / COMPLETE_MARKER).exists():
            return target  # another process finished first and may be using it
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    return target


def _remove_stale_scratch(cache_dir: Path) -> None:
    """Delete what killed builds left behind (half a gigabyte each)."""
    for scratch in cache_dir.glob(_SCRATCH_PREFIX + "*"):
        if time.time() - scratch.stat().st_mtime > _STALE_SCRATCH_SECONDS:
            shutil.rmtree(scratch, ignore_errors=True)
