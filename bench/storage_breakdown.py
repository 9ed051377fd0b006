"""Where a data folder's bytes go, per sentence: each SQLite table and index, each encoding
column, the FAISS files, and the whole folder.

Works on a copy: the copy is opened once with the configured settings first, so a folder
stored in full (for instance the one `bench/token_study.py` builds) is migrated and compacted
the way a user's would be on first open.

    PYTHONPATH=$PWD .venv/bin/python bench/storage_breakdown.py /tmp/token-study/data
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import tempfile
from pathlib import Path

from index.config import load_settings
from index.storage import open_storage

COLUMNS = ("model", "key", "vector", "token_ids", "token_spans", "token_vectors")


def breakdown(folder: Path) -> None:
    db = sqlite3.connect(folder / "library.sqlite3")
    (sentences,) = db.execute("SELECT COUNT(*) FROM sentences").fetchone()
    print(f"sentences {sentences}, SQLite page size {db.execute('PRAGMA page_size').fetchone()[0]}")
    for name, size in db.execute(
        "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC LIMIT 8"
    ):
        print(f"  {name:36s} {size / sentences:8.0f}")
    print("encoding columns (payload only):")
    for column in COLUMNS:
        (size,) = db.execute(f"SELECT SUM(LENGTH({column})) FROM encodings").fetchone()
        print(f"  {column:36s} {size / sentences:8.0f}")
    (codebooks,) = db.execute(
        "SELECT COALESCE(SUM(LENGTH(codebook)), 0) FROM token_codebooks"
    ).fetchone()
    print(f"  {'token codebooks':36s} {codebooks / sentences:8.0f}")
    db.close()
    vectors = sum(p.stat().st_size for p in (folder / "vectors").rglob("*") if p.is_file())
    total = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    print(
        f"FAISS files {vectors / sentences:.0f}, whole folder {total / sentences:.0f}"
        " bytes a sentence"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", help="a data folder (left untouched: a copy is measured)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="articlebot-storage-") as scratch:
        copy = Path(scratch) / "data"
        shutil.copytree(args.folder, copy)
        open_storage(load_settings().with_overrides(data_dir=copy)).close()
        breakdown(copy)


if __name__ == "__main__":
    main()
