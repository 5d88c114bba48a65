"""Derive the packaged optical tables in ``photonqd/optics/data/`` from the reference spectra.

Run once by a maintainer (never at run time)::

    python -m photonqd.optics.derive_tables /path/to/shared/data/spectra

It reads the published tables described in ``shared/data/spectra/README.md``, resamples them to a
2 nm grid on even nanometres (plus the measured end points), converts them to the package's units
(mm⁻¹, or M⁻¹ cm⁻¹ decadic for molar extinction), and writes one CSV per spectrum, each headed by its
citation, measured range and derivation. The Intralipid droplet-size calibration additionally needs
the optional ``miepython`` package.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).with_name("data")
GRID_STEP_NM = 2.0

# Whole-blood hemoglobin concentration and molar mass used throughout (Jacques 2013, Phys. Med. Biol.
# 58 R37, and Prahl, omlc.org/spectra/hemoglobin): 150 g/L of a 64 500 g/mol tetramer.
HB_G_PER_L = 150.0
HB_MOLAR_MASS = 64500.0

# Grey and white matter optical properties compiled in Table 1 of PMC6366475 (J. Biomed. Opt.-style
# compilation of in vitro integrating-sphere data): wavelength nm -> (μs mm⁻¹, g). The power law
# μs' = a (λ/500)^-b fitted to μs(1-g) is what the brain presets use.
BRAIN_MUS_G = {
    "grey": {670: (8.4, 0.90), 810: (7.3, 0.89), 850: (7.0, 0.90), 980: (6.0, 0.91), 1064: (5.9, 0.91)},
    "white": {670: (40.1, 0.85), 810: (38.0, 0.87), 850: (35.0, 0.87), 980: (31.0, 0.88), 1064: (30.0, 0.88)},
}


def _read_yml_table(path: Path, kind: str) -> np.ndarray:
    """Numeric rows of the first ``type: <kind>`` block of a refractiveindex.info YAML file."""
    text = path.read_text()
    for block in text.split("- type:")[1:]:
        if block.strip().startswith(kind):
            body = block.split("data: |", 1)[1]
            rows = [ln.split() for ln in body.splitlines() if re.match(r"^\s*[0-9]", ln)]
            return np.array(rows, dtype=float)
    raise ValueError(f"{path.name}: no '{kind}' block")


def _log_interp(x, xp, fp):
    """Interpolate a positive quantity linearly in log(value) against wavelength."""
    return np.exp(np.interp(x, xp, np.log(fp)))


def _grid(lo: float, hi: float) -> np.ndarray:
    """Even-nanometre 2 nm grid inside [lo, hi], with lo and hi themselves included."""
    inner = np.arange(np.ceil(lo / GRID_STEP_NM) * GRID_STEP_NM, hi + 1e-9, GRID_STEP_NM)
    return np.unique(np.concatenate([[lo], inner, [hi]]))


def _write(name: str, header: dict[str, str], columns: dict[str, np.ndarray]) -> None:
    lines = [f"# {k}: {v}" for k, v in header.items()]
    lines.append(",".join(columns))
    for row in zip(*columns.values()):
        lines.append(",".join(f"{v:.6g}" for v in row))
    (DATA_DIR / name).write_text("\n".join(lines) + "\n")


def water_mua(src: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """μa [mm⁻¹] = 4πk/λ of the Segelstein and Kedenburg tables, on their own wavelengths."""
    seg = _read_yml_table(src / "water_segelstein1981.yml", "tabulated nk")
    ked = _read_yml_table(src / "water_kedenburg2012.yml", "tabulated k")
    out = {}
    for key, lam_um, k in (("segelstein1981", seg[:, 0], seg[:, 2]), ("kedenburg2012", ked[:, 0], ked[:, 1])):
        lam_nm = lam_um * 1e3
        out[key] = (lam_nm, 4 * np.pi * k / (lam_nm * 1e-6))
    return out


def derive_water(src: Path) -> None:
    water = water_mua(src)
    specs = {
        "segelstein1981": (
            (250.0, 2000.0),
            "D. J. Segelstein, The complex refractive index of water, MSc thesis, University of "
            "Missouri-Kansas City (1981); via refractiveindex.info (CC0), file water_segelstein1981.yml",
            "10 nm - 10 m (table shipped for 250-2000 nm)",
            "25 C",
        ),
        "kedenburg2012": (
            (500.0, 1750.0),
            "S. Kedenburg, M. Vieweg, T. Gissibl, H. Giessen, Opt. Mater. Express 2, 1588-1611 (2012); "
            "via refractiveindex.info (CC0), file water_kedenburg2012.yml",
            "500-1750 nm",
            "20 C",
        ),
    }
    for key, ((lo, hi), citation, measured, temp) in specs.items():
        lam, mua = water[key]
        grid = _grid(lo, hi)
        _write(
            f"water_{key}.csv",
            {
                "quantity": "mua_water",
                "unit": "mm^-1",
                "citation": citation,
                "measured_range_nm": measured,
                "valid_range_nm": f"{lo:g}-{hi:g}",
                "interpolation": "log",
                "derivation": f"mua = 4*pi*k/lambda from the tabulated extinction index k ({temp}); "
                "resampled to a 2 nm grid by linear interpolation of log(mua) in wavelength",
            },
            {"wavelength_nm": grid, "mua_mm-1": _log_interp(grid, lam, mua)},
        )


def hemoglobin_tail(src: Path) -> dict:
    """Hemoglobin-only whole-blood μa beyond 1000 nm from Bosschaart et al. 2014, water removed.

    Method (documented in the data file headers):
    1. Whole-blood μa for SO₂ > 98 % and 0 % (Bosschaart 'literature' columns) contains plasma and
       cell water. Its effective water volume fraction W_b is fitted by least squares over the
       1300-1600 nm water band, jointly for both saturations, as μa_blood = W_b·μa_water + c_S with a
       wavelength-flat hemoglobin baseline c_S per saturation (μa_water: Segelstein 1981).
    2. The hemoglobin-only residual r(λ) = μa_blood - W_b·μa_water is kept only where it exceeds the
       water term it was separated from; from the first wavelength where W_b·μa_water ≥ r the residual
       is no longer resolvable against the ~10 % water-model uncertainty, so the tail ends there.
    3. The residual is scaled so that it joins Prahl's value at 1000 nm (the two sources differ in
       absolute level there; the factors are recorded), then converted to molar extinction with
       c_Hb = 150 g/L / 64 500 g/mol.
    """
    blood = np.loadtxt(src / "whole_blood_bosschaart2014.txt", skiprows=1)
    prahl = np.loadtxt(src / "hemoglobin_prahl_molar_extinction.txt", skiprows=1)
    lam_w, mua_w = water_mua(src)["segelstein1981"]
    lam = blood[:, 0]
    water_at = _log_interp(lam, lam_w, mua_w)

    band = (lam >= 1300) & (lam <= 1600)
    wb = water_at[band]
    zeros = np.zeros_like(wb)
    design = np.r_[np.c_[wb, np.ones_like(wb), zeros], np.c_[wb, zeros, np.ones_like(wb)]]
    (w_blood, _, _), *_ = np.linalg.lstsq(design, np.r_[blood[band, 1], blood[band, 2]], rcond=None)

    tail = lam >= 1000
    conc_molar = HB_G_PER_L / HB_MOLAR_MASS
    residual = {key: blood[tail, col] - w_blood * water_at[tail] for key, col in (("hbo2", 1), ("hb", 2))}
    water_term = w_blood * water_at[tail]
    limit = min(lam[tail][np.argmax(water_term >= r)] for r in residual.values())
    keep = lam[tail] < limit
    end_nm = np.floor(lam[tail][keep][-1] / GRID_STEP_NM) * GRID_STEP_NM

    out = {"w_blood": float(w_blood), "end_nm": float(end_nm), "limit_nm": float(limit)}
    for key, col in (("hbo2", 1), ("hb", 2)):
        eps_tail = residual[key][keep] * 10.0 / (np.log(10.0) * conc_molar)  # mm⁻¹ -> M⁻¹ cm⁻¹
        prahl_1000 = prahl[prahl[:, 0] == 1000, col][0]
        scale = prahl_1000 / eps_tail[0]
        out[key] = (lam[tail][keep], eps_tail * scale, float(scale))
    return out


def derive_hemoglobin(src: Path) -> dict:
    prahl = np.loadtxt(src / "hemoglobin_prahl_molar_extinction.txt", skiprows=1)
    tail = hemoglobin_tail(src)
    names = {"hbo2": ("oxy-hemoglobin (HbO2)", 1), "hb": ("deoxy-hemoglobin (Hb)", 2)}
    for key, (label, col) in names.items():
        t_lam, t_eps, scale = tail[key]
        grid_lo = _grid(250.0, 1000.0)
        grid_hi = _grid(1000.0, tail["end_nm"])[1:]
        eps = np.concatenate([
            _log_interp(grid_lo, prahl[:, 0], prahl[:, col]),
            _log_interp(grid_hi, t_lam, t_eps),
        ])
        _write(
            f"{key}_molar_extinction.csv",
            {
                "quantity": f"epsilon_{key}",
                "unit": "M^-1 cm^-1 (decadic, per mole of tetrameric hemoglobin)",
                "citation": "250-1000 nm: S. Prahl, Tabulated molar extinction coefficient for "
                "hemoglobin in water, omlc.org/spectra/hemoglobin (compiled from W. B. Gratzer and "
                "N. Kollias); 1000-%g nm: hemoglobin-only tail derived from N. Bosschaart et al., "
                "Lasers Med. Sci. 29, 453-479 (2014), whole blood Hct 45 %%" % tail["end_nm"],
                "measured_range_nm": "Prahl 250-1000; Bosschaart 251-1995 (whole blood, water included)",
                "valid_range_nm": f"250-{tail['end_nm']:g}",
                "interpolation": "log",
                "derivation": "Prahl values resampled (native 2 nm grid). Beyond 1000 nm: whole-blood "
                f"mua minus W_b*mua_water(Segelstein 1981) with W_b = {tail['w_blood']:.3f} fitted over the "
                "1300-1600 nm water band (joint for both saturations, flat hemoglobin baseline); the residual "
                f"ends at {tail['limit_nm']:g} nm, the first wavelength where the water term reaches the "
                "residual (beyond, hemoglobin is not resolvable against the water-model uncertainty); "
                f"scaled by {scale:.3f} to join Prahl at 1000 nm; converted with c_Hb = 150 g/L / "
                "64500 g/mol. See photonqd/optics/derive_tables.py:hemoglobin_tail",
                "blood_water_fraction": f"{tail['w_blood']:.4f}",
            },
            {"wavelength_nm": np.concatenate([grid_lo, grid_hi]), "epsilon_M-1cm-1": eps},
        )
    return tail


def derive_lipid(src: Path) -> None:
    fat = np.loadtxt(src / "fat_vanveen.txt", skiprows=1)
    grid = _grid(fat[0, 0], fat[-1, 0])
    _write(
        "lipid_vanveen2005.csv",
        {
            "quantity": "mua_lipid",
            "unit": "mm^-1",
            "citation": "R. L. P. van Veen, H. J. C. M. Sterenborg, A. Pifferi, A. Torricelli, E. Chikoidze, "
            "R. Cubeddu, J. Biomed. Opt. 10, 054004 (2005): purified pork fat",
            "measured_range_nm": f"{fat[0, 0]:g}-{fat[-1, 0]:g}",
            "valid_range_nm": f"{fat[0, 0]:g}-{fat[-1, 0]:g}",
            "interpolation": "log",
            "derivation": "m^-1 divided by 1000; resampled to a 2 nm grid (log interpolation). No lipid "
            "table above 1098 nm is shipped: evaluation there is flagged as an extrapolation",
        },
        {"wavelength_nm": grid, "mua_mm-1": _log_interp(grid, fat[:, 0], fat[:, 1] / 1000.0)},
    )


def derive_blood_scattering(src: Path) -> None:
    blood = np.loadtxt(src / "whole_blood_bosschaart2014.txt", skiprows=1)
    grid = _grid(252.0, 1994.0)
    _write(
        "whole_blood_scattering_bosschaart2014.csv",
        {
            "quantity": "mus_g_whole_blood",
            "unit": "mus mm^-1; g dimensionless",
            "citation": "N. Bosschaart, G. J. Edelman, M. C. G. Aalders, T. G. van Leeuwen, D. J. Faber, "
            "Lasers Med. Sci. 29, 453-479 (2014): 'literature' columns, SO2 > 98 %, Hct 45 %",
            "measured_range_nm": "251-1995",
            "valid_range_nm": "252-1994",
            "interpolation": "linear",
            "derivation": "resampled to a 2 nm grid by linear interpolation",
        },
        {
            "wavelength_nm": grid,
            "mus_mm-1": np.interp(grid, blood[:, 0], blood[:, 3]),
            "g": np.interp(grid, blood[:, 0], blood[:, 4]),
        },
    )


def fit_brain_scattering() -> dict[str, tuple[float, float]]:
    """Least-squares power law μs' = a (λ/500 nm)^-b [mm⁻¹] to the grey/white matter values."""
    fits = {}
    for tissue, points in BRAIN_MUS_G.items():
        lam = np.array(sorted(points), dtype=float)
        musp = np.array([points[int(l)][0] * (1 - points[int(l)][1]) for l in lam])
        slope, intercept = np.polyfit(np.log(lam / 500.0), np.log(musp), 1)
        fits[tissue] = (float(np.exp(intercept)), float(-slope))
    return fits


def derive_intralipid_mie() -> None:
    """Fit a log-normal droplet-diameter distribution to the Michels et al. 2008 fits.

    The fitted distribution, with Mie theory, is what ``photonqd.optics.intralipid`` uses outside
    the measured range of the Michels fits (350-900 nm). The fit uses 600-900 nm, the red end of
    that range, because the distribution is used to continue the data towards the NIR-II.
    """
    from scipy.optimize import least_squares

    from photonqd.optics import intralipid as il
    from photonqd.optics.provenance import Provenance

    rows = []
    lam = np.linspace(600.0, 900.0, 7)
    for stock in il.MICHELS_2008:
        target_mus = il.michels_mus(stock, lam)
        target_g = il.michels_g(stock, lam)
        phi = il.STOCK_LIPID_VOLUME_FRACTION[stock]

        def resid(p):
            median, sigma = np.exp(p)
            mus, g = il.mie_mus_g(lam, phi, median, sigma, Provenance())
            return np.r_[np.log(mus / target_mus), (g - target_g) / 0.05]

        sol = least_squares(resid, x0=np.log([200.0, 0.5]))
        median, sigma = np.exp(sol.x)
        mus, g = il.mie_mus_g(lam, phi, median, sigma, Provenance())
        rows.append((stock, median, sigma, np.max(np.abs(mus / target_mus - 1)), np.max(np.abs(g - target_g))))
    lines = [
        "# quantity: intralipid droplet diameter distribution (number-weighted log-normal)",
        "# citation: fitted here to the mus and g fits of S. Michels, F. Foschum, A. Kienle, "
        "Opt. Express 16, 5907-5925 (2008), Tables 3-4, over 600-900 nm",
        "# derivation: least squares in log(mus) and g (g weighted 1/0.05) with Mie theory (miepython), "
        "relative index soybean oil / water as in photonqd.optics.intralipid; "
        "see photonqd/optics/derive_tables.py:derive_intralipid_mie",
        "stock,median_diameter_nm,sigma_ln,max_rel_err_mus,max_abs_err_g",
    ]
    lines += [f"{s},{m:.2f},{sg:.4f},{em:.4f},{eg:.4f}" for s, m, sg, em, eg in rows]
    (DATA_DIR / "intralipid_mie_lognormal.csv").write_text("\n".join(lines) + "\n")


def main(argv: list[str]) -> None:
    src = Path(argv[1] if len(argv) > 1 else "/work/shared/data/spectra")
    derive_water(src)
    tail = derive_hemoglobin(src)
    derive_lipid(src)
    derive_blood_scattering(src)
    print(f"blood water fraction {tail['w_blood']:.4f}; Hb tail ends {tail['end_nm']:g} nm; "
          f"scale HbO2 {tail['hbo2'][2]:.3f}, Hb {tail['hb'][2]:.3f}")
    for tissue, (a, b) in fit_brain_scattering().items():
        print(f"brain {tissue}: a' = {a:.3f} mm^-1, b = {b:.3f}")
    derive_intralipid_mie()


if __name__ == "__main__":
    main(sys.argv)
