"""Hand-over to the transport engine: the [wavelength bin, label] optics table and QD absorption.

Table layout (DESIGN.md, "Optical properties"): float32 array (n_bins, n_labels, 4) with columns
(μa [mm⁻¹], μs [mm⁻¹], g, n). Label 0 is the ambient medium: its row is ignored by the engine and
is filled with zeros and n = n_ambient. Each bin is evaluated at its centre wavelength.
QD absorption: float32 (n_species, n_bins) in mm⁻¹ per µM of QDs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .provenance import Provenance, check_wavelengths
from .quantum_dots import QuantumDot

COLUMNS = ("mua_per_mm", "mus_per_mm", "g", "n")


@dataclass
class OpticsTable:
    """Everything the engine needs about optics for one run."""

    table: np.ndarray            # float32 (n_bins, n_labels, 4): μa, μs [mm⁻¹], g, n
    qd_absorption: np.ndarray    # float32 (n_species, n_bins): mm⁻¹ per µM
    wavelengths_nm: np.ndarray   # float64 (n_bins,): bin centres
    provenance: Provenance
    label_names: tuple[str, ...] = ()
    species_names: tuple[str, ...] = ()


def build_optics_table(
    tissues: Mapping[int, object],
    wavelengths_nm,
    quantum_dots: Sequence[QuantumDot] = (),
    n_ambient: float = 1.0,
) -> OpticsTable:
    """Build the optics table for a phantom.

    tissues : {label: medium} for labels 1..N, each medium having ``properties(wavelengths)``
        (a :class:`~photonqd.optics.tissue.Tissue`, a preset, or an
        :class:`~photonqd.optics.intralipid.Intralipid`). Label 0 (ambient) must not be given.
    wavelengths_nm : bin centre wavelengths [nm], 1-D.
    quantum_dots : QD species, in the order of the engine's species index.
    n_ambient : refractive index of the ambient medium (label 0), >= 1.
    """
    wl = check_wavelengths(wavelengths_nm)
    if wl.ndim != 1:
        raise ValueError("wavelengths_nm: must be 1-D (one centre wavelength per bin)")
    if not (np.isfinite(n_ambient) and n_ambient >= 1.0):
        raise ValueError(f"n_ambient: must be >= 1, got {n_ambient!r}")
    labels = sorted(tissues)
    if 0 in tissues:
        raise ValueError("tissues: label 0 is the ambient medium; give its index as n_ambient")
    if labels != list(range(1, len(labels) + 1)):
        raise ValueError(f"tissues: labels must be 1..N without gaps, got {labels}")

    table = np.zeros((wl.size, len(labels) + 1, 4), dtype=np.float32)
    table[:, 0, 3] = n_ambient
    provenance = Provenance()
    names = ["ambient"]
    for label in labels:
        props = tissues[label].properties(wl)
        table[:, label, 0] = props.mua
        table[:, label, 1] = props.mus
        table[:, label, 2] = props.g
        table[:, label, 3] = props.n
        provenance.merge(props.provenance)
        names.append(getattr(tissues[label], "name", str(label)))

    qd = np.zeros((len(quantum_dots), wl.size), dtype=np.float32)
    for i, species in enumerate(quantum_dots):
        qd[i] = species.mua_per_uM(wl, provenance)
    for e in provenance.extrapolations:
        provenance.note(f"extrapolated: {e.quantity} ({e.source}) at {e.requested_nm[0]:g}-{e.requested_nm[1]:g} nm, "
                        f"measured {e.valid_nm[0]:g}-{e.valid_nm[1]:g} nm, {e.method}")
    return OpticsTable(table, qd, wl.copy(), provenance, tuple(names), tuple(q.name for q in quantum_dots))
