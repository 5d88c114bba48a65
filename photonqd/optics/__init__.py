"""Optical properties 400-1700 nm: chromophore spectra, tissues, Intralipid, quantum dots.

Units: wavelength nm, μa and μs mm⁻¹, molar extinction M⁻¹ cm⁻¹ (decadic), QD concentration µM.
Every value evaluated outside its source's measured range is recorded in a :class:`Provenance`.
"""

from .chromophores import BLOOD_WATER_FRACTION, Chromophores, molar_to_mua, water_refractive_index
from .fixed import FixedOptics
from .handover import OpticsTable, build_optics_table
from .intralipid import Intralipid
from .presets import preset_names, tissue_preset
from .provenance import ExtrapolationWarning, Provenance
from .quantum_dots import (
    ExcitonAbsorption,
    GaussianEmission,
    QuantumDot,
    TabulatedEmission,
    moreels2009_bandgap_ev,
    moreels2009_diameter_nm,
    moreels2009_epsilon400,
    qd_preset,
    qd_preset_names,
    yu2003_diameter_nm,
    yu2003_epsilon,
)
from .scattering import JacquesScattering, PowerLawScattering, TabulatedScattering
from .spectra import Spectrum
from .tissue import Tissue, TissueOptics


def plot_tissues(*args, **kwargs):
    """See :func:`photonqd.optics.plot.plot_tissues` (imported lazily: matplotlib is optional)."""
    from .plot import plot_tissues as _plot

    return _plot(*args, **kwargs)


__all__ = [
    "BLOOD_WATER_FRACTION", "Chromophores", "ExcitonAbsorption", "ExtrapolationWarning", "FixedOptics", "GaussianEmission",
    "Intralipid", "JacquesScattering", "OpticsTable", "PowerLawScattering", "Provenance", "QuantumDot",
    "Spectrum", "TabulatedEmission", "TabulatedScattering", "Tissue", "TissueOptics", "build_optics_table",
    "molar_to_mua", "moreels2009_bandgap_ev", "moreels2009_diameter_nm", "moreels2009_epsilon400",
    "plot_tissues", "preset_names", "qd_preset", "qd_preset_names", "tissue_preset", "water_refractive_index",
    "yu2003_diameter_nm", "yu2003_epsilon",
]
