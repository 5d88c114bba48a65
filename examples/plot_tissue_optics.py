"""Render docs/img/tissue_optics.png: μa and μs' of tissue presets, 400-1700 nm, NIR windows shaded.

Run from the repository root:  python examples/plot_tissue_optics.py   (needs photonqd[plot])
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from photonqd.optics import plot_tissues  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "docs" / "img" / "tissue_optics.png"

if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    plot_tissues(["epidermis", "dermis", "subcutaneous_fat", "skeletal_muscle", "brain_grey_matter",
                  "brain_white_matter", "whole_blood"], path=OUT)
    print(f"wrote {OUT}")
