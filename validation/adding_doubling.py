"""Adding-doubling reference values for slabs (iadpython, Prahl's implementation of Prahl et al. 1989).

Like with like: for a collimated beam at normal incidence on a slab in air with no glass slides,
iadpython's ``UR1`` is the total reflection (the specular reflection at the first surface plus all
light that comes back out, unscattered internal reflections included) and ``UT1`` the total
transmission (unscattered light included). In photonqd terms that is
``specular + escaped["z-"]`` and ``escaped["z+"]`` of a pencil beam with ``specular=True``.

Quadrature: 24 points; 16 and 24 points differ by < 1e-4 on the cases used, and that difference is
the reference's tolerance. (iadpython 0.5 breaks down from 32 points on index-matched slabs.)
"""

from __future__ import annotations

QUAD_POINTS = 24
COARSE_QUAD_POINTS = 16
MIN_TOLERANCE = 1e-5


def _rt(albedo, optical_thickness, g, n, quad_points) -> tuple[float, float]:
    import iadpython  # test dependency only: the stored case values do not need it

    sample = iadpython.Sample(a=albedo, b=optical_thickness, g=g, d=1.0, n=n,
                              n_above=1.0, n_below=1.0, quad_pts=quad_points)
    ur1, ut1, _, _ = sample.rt()
    return float(ur1), float(ut1)


def total_rt(albedo, optical_thickness, g, n) -> tuple[tuple[float, float], tuple[float, float]]:
    """((R, tolerance), (T, tolerance)) for a slab in air under normal collimated light."""
    fine = _rt(albedo, optical_thickness, g, n, QUAD_POINTS)
    coarse = _rt(albedo, optical_thickness, g, n, COARSE_QUAD_POINTS)
    return tuple((f, max(abs(f - c), MIN_TOLERANCE)) for f, c in zip(fine, coarse))
