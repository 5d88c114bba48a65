"""Reading the package's cited data tables: CSV with '#' comment lines (the citation header)."""

from __future__ import annotations

import csv
from pathlib import Path


def read_keyed_csv(path: Path, key: str) -> dict[str, dict[str, str]]:
    """Rows of a CSV table keyed by column ``key``; lines starting with '#' are skipped."""
    with open(path, newline="") as fh:
        return {row[key]: row for row in csv.DictReader(line for line in fh if not line.startswith("#"))}


def preset_row(rows: dict[str, dict[str, str]], name: str, field: str, kind: str) -> dict[str, str]:
    """The row of preset ``name``, or a ValueError naming ``field`` and the presets there are."""
    if name not in rows:
        raise ValueError(f"{field}: unknown {kind} preset {name!r}; choose from {list(rows)}")
    return rows[name]
