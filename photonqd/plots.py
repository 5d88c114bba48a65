"""Figures of a depth study (matplotlib, the ``plot`` extra): metrics against depth per probe, and
an image montage per depth. PNG files meant for a paper draft."""

from __future__ import annotations

from pathlib import Path

import numpy as np

METRICS = (("cnr", "contrast-to-noise ratio"), ("snr", "signal-to-noise ratio"),
           ("sbr", "signal-to-background ratio"), ("fwhm_mm", "apparent size, FWHM (mm)"))


#: Most image montages one study writes.
MONTAGES = 10


def _pyplot():
    try:
        import matplotlib
    except ImportError as err:
        raise RuntimeError("plots need matplotlib: pip install 'photonqd[plot]'") from err
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_metrics(result, path) -> Path:
    """Metrics against target depth, one line per probe with its 2-standard-error band where the
    study has errors; the criterion's threshold dashed, each probe's depth limit dotted."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(9, 7))
    for ax, (name, label) in zip(axes.ravel(), METRICS):
        for probe in result.config.probes:
            images = sorted((i for i in result.images if i.probe == probe.name), key=lambda i: i.depth_mm)
            depths = np.array([i.depth_mm for i in images])
            values = np.array([getattr(i.metrics, name) for i in images])
            errors = np.array([i.errors.get(name, np.nan) for i in images])
            line, = ax.plot(depths, values, "o-", ms=3, label=probe.name)
            if np.any(np.isfinite(errors)):        # 2 standard errors, the decision's margin
                ax.fill_between(depths, values - 2 * errors, values + 2 * errors, color=line.get_color(),
                                alpha=0.25, lw=0)
            if name == result.config.criterion:
                limit = result.depth_limit(probe.name)
                if limit.status in ("crossing", "beyond"):
                    ax.axvline(limit.estimate, color=line.get_color(), ls=":", lw=1)
        if name == result.config.criterion:
            ax.axhline(result.config.threshold, color="k", ls="--", lw=1, label="threshold")
        if name in ("cnr", "snr", "sbr"):
            ax.set_yscale("symlog", linthresh=1.0)
        ax.set_xlabel("target depth (mm)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0, 0].legend()
    fig.suptitle(f"photonqd depth study: {result.config.phantom}")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


def plot_montage(result, depth_mm: float, path) -> Path:
    """Expected camera images (signal + background, electrons) of every probe at one depth."""
    plt = _pyplot()
    images = [i for i in result.images if np.isclose(i.depth_mm, depth_mm)]
    fig, axes = plt.subplots(1, len(images), figsize=(4.4 * len(images), 3.6), squeeze=False)
    fov = result.config.camera.field_of_view_mm
    for ax, img in zip(axes[0], images):
        shown = ax.imshow((img.signal_e + img.background_e).T, origin="lower", cmap="inferno",
                          extent=(-fov / 2, fov / 2, -fov / 2, fov / 2))
        ax.set_title(f"{img.probe}, {depth_mm:g} mm: CNR {img.metrics.cnr:.3g}", fontsize=10)
        ax.set_xlabel("x (mm)")
        ax.set_ylabel("y (mm)")
        fig.colorbar(shown, ax=ax, label="electrons")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


def plot_sensitivity(result, variants, path) -> Path:
    """Tornado plot: per probe, each factor's bar spans the depth limits at the low and high end of
    its range (labelled), the study's limit as a vertical line; factors ordered by their swing.
    Limits that are bounds (beyond the studied range) are drawn hatched."""
    plt = _pyplot()
    probes = [p.name for p in result.config.probes]
    factors = list(dict.fromkeys(v.factor for v in variants))
    fig, axes = plt.subplots(1, len(probes), figsize=(4.6 * len(probes), 0.6 * len(factors) + 1.6),
                             squeeze=False, sharey=True)
    for ax, probe in zip(axes[0], probes):
        base = result.depth_limit(probe).estimate
        rows = []
        for name in factors:
            ends = [v for v in variants if v.factor == name]
            depths = [v.limits[probe].estimate for v in ends]
            rows.append((name, ends, depths, np.nanmax(depths) - np.nanmin(depths) if np.any(np.isfinite(depths)) else 0))
        rows.sort(key=lambda r: r[3])
        for y, (name, ends, depths, _) in enumerate(rows):
            for v, d in zip(ends, depths):
                if not np.isfinite(d) or not np.isfinite(base):
                    continue
                bound = v.limits[probe].status != "crossing"
                ax.barh(y, d - base, left=base, color="tab:blue" if d >= base else "tab:red", alpha=0.7,
                        hatch="//" if bound else None, edgecolor="k", lw=0.5)
                ax.text(d, y, f" {v.value:.3g}", va="center", ha="left" if d >= base else "right", fontsize=8)
        ax.axvline(base, color="k", lw=1)
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels([r[0] for r in rows])
        ax.set_xlabel("depth limit (mm)")
        ax.set_title(f"{probe}: {result.depth_limit(probe).describe()} mm as studied", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


def plot_multiplex_spectra(result, path) -> Path:
    """Each species' emission spectrum (peak-normalised) with the channels' bands shaded."""
    plt = _pyplot()
    mux, cfg = result.multiplex, result.config
    lo = min(c.window_nm[0] for c in mux.channels) - 150
    hi = max(c.window_nm[1] for c in mux.channels) + 150
    grid = np.linspace(lo, hi, 1000)
    fig, ax = plt.subplots(figsize=(8, 4))
    for k, ch in enumerate(mux.channels):
        ax.axvspan(*ch.window_nm, color=f"C{k % 10}", alpha=0.12, lw=0)
        ax.text(0.5 * sum(ch.window_nm), 1.03, ch.name, ha="center", fontsize=8)
    for k, species in enumerate(mux.species):
        pdf = cfg.quantum_dot(species).emission.pdf(grid)
        ax.plot(grid, pdf / pdf.max(), color=f"C{k % 10}", label=species)
    ax.axvline(cfg.excitation.wavelength_nm, color="k", ls="--", lw=1, label="excitation")
    ax.set_xlabel("wavelength (nm)")
    ax.set_ylabel("emission (peak = 1)")
    ax.set_ylim(0, 1.12)
    ax.legend(fontsize=8)
    ax.set_title("species and detection channels")
    return _save(fig, plt, path)


def plot_crosstalk(result, path) -> Path:
    """The crosstalk matrix at the settings' depth as a heat map, each cell with its value."""
    plt = _pyplot()
    mux = result.multiplex
    depth = mux.at(mux.crosstalk_depth_mm)
    fig, ax = plt.subplots(figsize=(1.4 * len(mux.species) + 2.5, 1.0 * len(mux.channels) + 2))
    shown = ax.imshow(np.nan_to_num(depth.crosstalk), vmin=0, vmax=1, cmap="viridis")
    for (c, s), v in np.ndenumerate(depth.crosstalk):
        ax.text(s, c, f"{v:.2f}\n±{depth.crosstalk_error[c, s]:.2f}" if np.isfinite(v) else "-",
                ha="center", va="center", fontsize=8, color="w" if v < 0.6 else "k")
    ax.set_xticks(range(len(mux.species)), mux.species, rotation=30, ha="right")
    ax.set_yticks(range(len(mux.channels)), [c.name for c in mux.channels])
    ax.set_xlabel("species")
    ax.set_ylabel("channel")
    ax.set_title(f"crosstalk at {depth.depth_mm:g} mm (condition number {depth.condition_number:.3g})")
    fig.colorbar(shown, ax=ax, label="fraction of the species' contrast")
    return _save(fig, plt, path)


def plot_unmixed_cnr(result, path) -> Path:
    """Unmixed CNR against depth per species, 2-standard-error bands, the threshold dashed and
    each species' separable depth dotted."""
    plt = _pyplot()
    mux = result.multiplex
    fig, ax = plt.subplots(figsize=(8, 5))
    depths = np.array([d.depth_mm for d in mux.depths])
    for k, species in enumerate(mux.species):
        cnr = np.array([d.cnr[k] for d in mux.depths])
        err = np.array([d.cnr_error[k] for d in mux.depths])
        line, = ax.plot(depths, cnr, "o-", ms=3, label=species)
        ax.fill_between(depths, cnr - 2 * err, cnr + 2 * err, color=line.get_color(), alpha=0.25, lw=0)
        limit = mux.separable_depth(species)
        if limit.status in ("crossing", "beyond"):
            ax.axvline(limit.estimate, color=line.get_color(), ls=":", lw=1)
    ax.axhline(mux.threshold, color="k", ls="--", lw=1, label="threshold")
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_ylim(bottom=0)                   # a CNR below 0 is noise around nothing
    ax.set_xlabel("target depth (mm)")
    ax.set_ylabel("unmixed CNR")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("separability after unmixing")
    return _save(fig, plt, path)


def _save(fig, plt, path) -> Path:
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


def write_plots(result, folder) -> list[Path]:
    """All figures of a study into ``folder``: metrics.png and montage_<depth>mm.png (at most
    MONTAGES depths, evenly spread); for a multiplexed study spectra.png, crosstalk.png and
    unmixed_cnr.png instead."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if result.multiplex is not None:
        return [plot_multiplex_spectra(result, folder / "spectra.png"), plot_crosstalk(result, folder / "crosstalk.png"),
                plot_unmixed_cnr(result, folder / "unmixed_cnr.png")]
    paths = [plot_metrics(result, folder / "metrics.png")]
    depths = result.completed_depths()
    if len(depths) > MONTAGES:     # a fine depth grid: montages at evenly spread depths
        depths = [depths[i] for i in np.unique(np.linspace(0, len(depths) - 1, MONTAGES).round().astype(int))]
    for depth in depths:
        paths.append(plot_montage(result, depth, folder / f"montage_{depth:g}mm.png"))
    return paths
