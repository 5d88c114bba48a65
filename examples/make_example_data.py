"""Write the example data files of examples/data/ (run from anywhere: python examples/make_example_data.py).

pbs_cds_1150_emission.csv: the emission spectrum of a PbS/CdS QD emitting at 1150 nm, as a
    spectrometer table (wavelength nm, counts). Synthetic: a Gaussian in photon energy with a
    110 nm FWHM at the peak, the line shape photonqd's PbS/CdS presets use (qd_presets.csv), with a
    weak red tail that a Gaussian lacks (trap emission, 3 % of the peak, decaying over 150 nm).
mouse_head_slab.npz: a synthetic mouse-head slab (labels, uint8) made from shapes: 0.5 mm scalp,
    0.2 mm skull, brain below, and a spherical tumour (radius 0.5 mm) whose centre lies 1.5 mm
    below the scalp surface; 12 x 12 x 6 mm in 0.2 x 0.2 x 0.05 mm voxels. The thicknesses are
    photonqd.phantom.MOUSE_HEAD_LAYERS' (typical adult mouse; see their comment for their basis).
    Labels: 1 scalp, 2 skull, 3 brain, 4 tumour (examples/mouse_head_volume_study.toml maps them).
"""

from pathlib import Path

import numpy as np

from photonqd.phantom import MOUSE_HEAD_LAYERS, layer_labels, sphere_mask

HERE = Path(__file__).with_name("data")
HC_EV_NM = 1239.841984


def emission_table() -> np.ndarray:
    wl = np.arange(950.0, 1451.0, 5.0)
    peak, fwhm = 1150.0, 110.0
    e, e0 = HC_EV_NM / wl, HC_EV_NM / peak
    sigma = (HC_EV_NM / (peak - fwhm / 2) - HC_EV_NM / (peak + fwhm / 2)) / 2.3548
    counts = np.exp(-0.5 * ((e - e0) / sigma) ** 2) + 0.03 * np.exp(-np.clip(wl - peak, 0, None) / 150.0) * (wl > peak)
    return np.column_stack([wl, 1e4 * counts / counts.max()])


def mouse_head_slab() -> np.ndarray:
    size, voxel = (12.0, 12.0, 6.0), (0.2, 0.2, 0.05)
    shape = tuple(round(s / v) for s, v in zip(size, voxel))
    labels = layer_labels(shape, voxel, [t for _, t in MOUSE_HEAD_LAYERS], below=len(MOUSE_HEAD_LAYERS) + 1)
    labels[sphere_mask(shape, voxel, (size[0] / 2, size[1] / 2, 1.5), 0.5)] = 4
    return labels.astype(np.uint8)


if __name__ == "__main__":
    HERE.mkdir(exist_ok=True)
    table = emission_table()
    with open(HERE / "pbs_cds_1150_emission.csv", "w") as fh:
        fh.write("# PbS/CdS QD emitting at 1150 nm: synthetic example spectrum (examples/make_example_data.py)\n")
        fh.write("wavelength_nm,counts\n")
        fh.writelines(f"{w:.0f},{c:.2f}\n" for w, c in table)
    np.savez_compressed(HERE / "mouse_head_slab.npz", labels=mouse_head_slab())
