"""photonqd: Monte Carlo photon transport for quantum-dot fluorescence imaging.

Units throughout: mm, 1/mm, ns, nm. See README.md and DESIGN.md.
"""

from .medium import FACES, Medium
from .simulation import ExitMap, Simulation
from .sources import (CameraLaunch, DiskSource, GaussianBeam, IsotropicPoint, PencilBeam, RectangleSource,
                      Source)
from .tallies import Result

__version__ = "0.1.0"

__all__ = ["FACES", "Medium", "ExitMap", "Simulation", "Source", "PencilBeam", "GaussianBeam",
           "DiskSource", "RectangleSource", "IsotropicPoint", "CameraLaunch", "Result", "__version__"]
