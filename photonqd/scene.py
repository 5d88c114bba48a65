"""The scene: one description of a problem, whatever is run on it.

A Scene is a labelled voxel volume with a tissue per label, the ambient medium and the box's
boundary, optionally QD species (fluorophores) and a target mask. Every phantom is one: MCX's
benchmarks and the validation slabs (tissues given as photonqd.optics.FixedOptics), the fluorescence
scenes of photonqd.phantom (composition-based tissues evaluated per wavelength). ``Scene.medium``
is the one road from a scene to the engine's photonqd.medium.Medium, the table-level input of a
Simulation; ``excite`` and ``image`` run the two fluorescence stages (photonqd.fluorescence).

Scenes are immutable: ``with_fluorophores`` and ``with_fluorophore`` return new scenes, so a study
that labels one scene with each probe's QD in turn never changes the scene it was given.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from . import fluorescence
from .autofluorescence import Autofluorescence, default_autofluorescence, default_names
from .medium import MAX_SPECIES, Medium
from .optics import FixedOptics, OpticsTable, build_optics_table
from .optics.quantum_dots import QuantumDot

class NotLaterallyInvariant(ValueError):
    """The scene without its target is not a stack of layers."""


#: Fixed optics take the same values at every wavelength; a table of them still needs one bin,
#: labelled with this wavelength (nm), which changes nothing.
FIXED_OPTICS_NM = 500.0


@dataclass(frozen=True, eq=False)
class Fluorophore:
    """A QD species and its concentration per voxel (µM, shaped like the label volume)."""

    quantum_dot: QuantumDot
    concentration_uM: np.ndarray

    def __post_init__(self):
        if not isinstance(self.quantum_dot, QuantumDot):
            raise TypeError("quantum_dot: expected a photonqd.optics.QuantumDot")
        c = np.asarray(self.concentration_uM, dtype=np.float32)
        if c.ndim != 3 or not np.all(np.isfinite(c)) or np.any(c < 0):
            raise ValueError("concentration_uM: need a 3-D array of finite values >= 0 µM")
        object.__setattr__(self, "concentration_uM", c)


@dataclass(frozen=True, eq=False)
class Scene:
    """A labelled tissue volume, optionally with fluorophores and a target.

    labels:           uint8/uint16 volume (nx, ny, nz); 0 is the ambient medium.
    voxel_size:       mm (one number or dx, dy, dz).
    tissues:          {label: tissue} for labels 1..N: anything with ``properties(wavelengths_nm)``
                      (a photonqd.optics Tissue or preset, an Intralipid, a FixedOptics).
    autofluorescence: {label: Autofluorescence}. Labels left out take the default of their tissue
                      preset (``photonqd.autofluorescence``) when one exists; None switches a
                      label's autofluorescence off.
    n_ambient:        refractive index outside the volume.
    boundary:         per face 'escape', 'mirror' or 'cyclic' (photonqd.medium), or one for all.
    fluorophores:     QD species (Fluorophore), in the engine's species order.
    target:           optional boolean mask (nx, ny, nz) of the imaging target (for metrics).
    """

    labels: np.ndarray
    voxel_size: float | tuple
    tissues: Mapping[int, object]
    autofluorescence: Mapping[int, Autofluorescence | None] = field(default_factory=dict)
    n_ambient: float = 1.0
    boundary: dict | str = "escape"
    fluorophores: tuple = ()
    target: np.ndarray | None = None

    def __post_init__(self):
        object.__setattr__(self, "labels", np.asarray(self.labels))
        object.__setattr__(self, "tissues", dict(self.tissues))
        object.__setattr__(self, "autofluorescence", dict(self.autofluorescence))
        object.__setattr__(self, "fluorophores", tuple(self.fluorophores))
        present = set(np.unique(self.labels).tolist()) - {0}
        missing = present - set(self.tissues)
        if missing:
            raise ValueError(f"tissues: labels {sorted(missing)} occur in the volume without a tissue")
        for label, af in self.autofluorescence.items():
            if af is not None and not isinstance(af, Autofluorescence):
                raise TypeError(f"autofluorescence[{label}]: expected an Autofluorescence or None")
        if len(self.fluorophores) > MAX_SPECIES:
            raise ValueError(f"fluorophores: at most {MAX_SPECIES} species, got {len(self.fluorophores)}")
        for i, f in enumerate(self.fluorophores):
            if not isinstance(f, Fluorophore):
                raise TypeError(f"fluorophores[{i}]: expected a photonqd.scene.Fluorophore")
            if f.concentration_uM.shape != self.labels.shape:
                raise ValueError(f"fluorophores[{i}].concentration_uM: shape {f.concentration_uM.shape} "
                                 f"differs from the labels' {self.labels.shape}")

    # --- derived scenes --------------------------------------------------------------------
    def with_fluorophores(self, *fluorophores: Fluorophore) -> "Scene":
        """This scene with exactly these fluorophores (none: tissue only)."""
        return dataclasses.replace(self, fluorophores=fluorophores)

    def with_fluorophore(self, quantum_dot: QuantumDot, concentration_uM) -> "Scene":
        """This scene with one more QD species: µM per voxel, or one number for every tissue voxel."""
        c = np.asarray(concentration_uM, dtype=np.float32)
        if c.ndim == 0:
            c = np.where(self.labels > 0, c, 0).astype(np.float32)
        if c.shape != self.labels.shape:
            raise ValueError(f"concentration_uM: shape {c.shape} differs from the labels' {self.labels.shape}")
        return self.with_fluorophores(*self.fluorophores, Fluorophore(quantum_dot, c))

    def with_labels(self, labels, target=None) -> "Scene":
        """The same tissues over new labels (no fluorophores: their maps follow the old volume)."""
        return dataclasses.replace(self, labels=labels, fluorophores=(), target=target)

    def without_target(self) -> "Scene":
        """The scene with its target voxels given the label of their layer (taken from a column
        outside the target), no fluorophores and no target; raises NotLaterallyInvariant if the
        volume outside the target is not a stack of layers."""
        labels = np.asarray(self.labels)
        target = np.zeros(labels.shape, bool) if self.target is None else np.asarray(self.target, bool)
        columns = target.any(axis=2)
        if columns.all():
            raise NotLaterallyInvariant("phantom: the target covers every column; no host layer to put in its place")
        i, j = np.argwhere(~columns)[0]
        layers = labels[i, j, :]
        if not ((labels == layers[None, None, :]) | target).all():
            raise NotLaterallyInvariant("phantom: its tissue is not a stack of layers outside the target; the "
                                        "adjoint study needs lateral invariance (use study.method = \"forward\")")
        return self.with_labels(np.broadcast_to(layers, labels.shape).copy())

    # --- to the engine ---------------------------------------------------------------------
    def medium(self, wavelengths_nm=None, fluorophores=None) -> tuple[Medium, OpticsTable]:
        """The engine's medium with one optics bin per wavelength (nm) and the given fluorophores
        (default: the scene's), and the optics table it was built from. ``wavelengths_nm`` may be
        left out when every tissue is a FixedOptics."""
        if wavelengths_nm is None:
            varying = sorted(label for label, t in self.tissues.items() if not isinstance(t, FixedOptics))
            if varying:
                raise ValueError(f"wavelengths_nm: needed, the optics of labels {varying} depend on wavelength")
            wavelengths_nm = [FIXED_OPTICS_NM]
        fluorophores = self.fluorophores if fluorophores is None else tuple(fluorophores)
        table = build_optics_table(self.tissues, wavelengths_nm,
                                   quantum_dots=[f.quantum_dot for f in fluorophores], n_ambient=self.n_ambient)
        kwargs = {}
        if fluorophores:
            kwargs = dict(fluorophore_concentration=np.stack([f.concentration_uM for f in fluorophores]),
                          fluorophore_absorption=table.qd_absorption)
        # the ambient index as the float32 table holds it: a tissue index equal to the ambient's
        # (MCX's "no reflection") must stay equal after the table's rounding
        medium = Medium(self.labels, self.voxel_size, table.table, n_ambient=float(table.table[0, 0, 3]),
                        boundary=self.boundary, **kwargs)
        return medium, table

    def autofluorescence_of(self, label: int) -> Autofluorescence | None:
        if label in self.autofluorescence:
            return self.autofluorescence[label]
        name = getattr(self.tissues[label], "name", None)
        return default_autofluorescence(name) if name in default_names() else None

    # --- fluorescence (photonqd.fluorescence) ----------------------------------------------
    def excite(self, *args, **kwargs) -> fluorescence.ExcitationStage:
        """Stage 1, the excitation run: see photonqd.fluorescence.excite."""
        return fluorescence.excite(self, *args, **kwargs)

    def image(self, *args, **kwargs) -> fluorescence.FluorescenceResult:
        """Stage 2, emission into a camera: see photonqd.fluorescence.image."""
        return fluorescence.image(self, *args, **kwargs)

    def run(self, *args, **kwargs) -> fluorescence.FluorescenceResult:
        """Both stages: see photonqd.fluorescence.run."""
        return fluorescence.run(self, *args, **kwargs)
