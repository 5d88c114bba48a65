"""Plot μa and μs' of tissue presets over 400-1700 nm with the NIR windows shaded (needs matplotlib)."""

from __future__ import annotations

import numpy as np

from .presets import tissue_preset
from .provenance import Provenance

# Optical windows (nm): NIR-I, NIR-II and its sub-windows NIR-IIa and NIR-IIb.
WINDOWS = {"NIR-I": (700, 900), "NIR-II": (1000, 1700), "NIR-IIa": (1300, 1400), "NIR-IIb": (1500, 1700)}

DEFAULT_PRESETS = ("dermis", "subcutaneous_fat", "skeletal_muscle", "brain_grey_matter", "whole_blood")


def plot_tissues(presets=DEFAULT_PRESETS, wavelengths_nm=None, path=None):
    """Figure of μa and μs' [mm⁻¹] (log scale) for ``presets``; saved to ``path`` if given.

    Dashed segments mark wavelengths where a preset's scattering law or any chromophore is
    extrapolated beyond its source's measured range. Returns the matplotlib Figure.
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("plot_tissues needs matplotlib: pip install 'photonqd[plot]'") from exc
    wl = np.arange(400.0, 1701.0, 2.0) if wavelengths_nm is None else np.asarray(wavelengths_nm, float)
    fig, (ax_a, ax_s) = plt.subplots(1, 2, figsize=(11, 4.8), sharex=True)
    for ax in (ax_a, ax_s):
        for i, (label, (lo, hi)) in enumerate(WINDOWS.items()):
            ax.axvspan(lo, hi, color=f"C{i + 6}", alpha=0.10 if label in ("NIR-I", "NIR-II") else 0.18,
                       lw=0, label=label if ax is ax_a else None)
    for k, name in enumerate(presets):
        props = tissue_preset(name).properties(wl)
        for ax, y, scattering in ((ax_a, props.mua, False), (ax_s, props.mus_reduced, True)):
            measured = _measured_mask(wl, props.provenance, scattering)
            ax.plot(wl, np.where(measured, y, np.nan), color=f"C{k}", label=name if ax is ax_a else None)
            ax.plot(wl, np.where(measured, np.nan, y), color=f"C{k}", ls="--", lw=1)
    ax_a.set_ylabel("μa [mm⁻¹]")
    ax_s.set_ylabel("μs′ [mm⁻¹]")
    for ax in (ax_a, ax_s):
        ax.set_yscale("log")
        ax.set_xlabel("wavelength [nm]")
        ax.set_xlim(wl[0], wl[-1])
    fig.legend(fontsize=7, ncol=6, loc="lower center", frameon=False)
    ax_s.set_title("dashed: extrapolated beyond a source's measured range", fontsize=8)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    if path is not None:
        fig.savefig(path, dpi=150)
    return fig


def _measured_mask(wl, provenance: Provenance, scattering: bool) -> np.ndarray:
    """True where no absorption (or, with ``scattering``, no scattering) input was extrapolated."""
    inside = np.ones_like(wl, dtype=bool)
    for e in provenance.extrapolations:
        if ("mus" in e.quantity) == scattering:
            inside &= (wl >= e.valid_nm[0]) & (wl <= e.valid_nm[1])
    return inside
