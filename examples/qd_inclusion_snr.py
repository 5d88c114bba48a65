"""SNR of a QD-labelled tumour under skin, imaged in NIR-I and in NIR-II.

A 1 mm-radius tumour 3 mm deep (layered skin over muscle, photonqd.phantom.skin_tumour) holds
1 µM of quantum dots. It is excited at 808 nm (50 mW/cm², 10 mm disk) and imaged by a silicon CCD
(NIR-I QD, 820-900 nm window) or an InGaAs camera (PbS/CdS QD, 1250-1400 nm window), 50 ms
exposure. Prints the region SNR and signal-to-background ratio over the tumour and writes the
images as PNG.

Run:  python examples/qd_inclusion_snr.py [--photons N] [--backend opencl] [--out DIR]
"""

import argparse
import pathlib

import numpy as np

import photonqd as pq
from photonqd.camera import Camera, EmissionFilter, sensor_preset
from photonqd.fluorescence import Excitation
from photonqd.optics import qd_preset
from photonqd.phantom import skin_tumour

PROBES = {  # name: (QD preset, sensor preset, emission window in nm)
    "NIR-I": ("cdtese_zns_800", "silicon_ccd_bidd", (820.0, 900.0)),
    "NIR-II": ("pbs_cds_1300", "ingaas_standard", (1250.0, 1400.0)),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photons", type=int, default=300_000, help="excitation photons per probe")
    parser.add_argument("--backend", default=None, help="cuda, opencl or numpy (default: auto)")
    parser.add_argument("--out", default=".", help="folder for the PNG images")
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    excitation = Excitation(pq.DiskSource((10.0, 10.0, 0.0), radius=5.0), 808.0, 50.0)
    images = {}
    for name, (qd, sensor, window) in PROBES.items():
        scene = skin_tumour(depth_mm=3.0, quantum_dot=qd_preset(qd), concentration_uM=1.0)
        camera = Camera(field_of_view_mm=(10.0, 10.0), pixels=(25, 25), centre_mm=(10.0, 10.0),
                        numerical_aperture=0.3, emission_filter=EmissionFilter(*window, blocking_od=6.0),
                        sensor=sensor_preset(sensor), exposure_s=0.05)
        result = scene.run(excitation, camera, photons=args.photons, backend=args.backend)
        target = _disk(camera.binned_pixels, radius_px=2.5)
        ring = _disk(camera.binned_pixels, radius_px=10) & ~_disk(camera.binned_pixels, radius_px=6)
        s, b = result.signal_e, result.background_e
        total = s + b
        print(f"{name:7s} backend {result.stage.result.backend}: region SNR {result.region_snr(target):10.1f}  "
              f"signal-to-background {total[target].mean() / total[ring].mean():6.2f}  "
              f"electrons/pixel at the centre: signal {s[target].mean():.3g}, background {b[target].mean():.3g}")
        images[name] = result.noisy_image(seed=1)
    _write_png(images, out / "qd_inclusion.png")
    print(f"wrote {out / 'qd_inclusion.png'}")


def _disk(shape, radius_px):
    x, y = np.indices(shape)
    cx, cy = (shape[0] - 1) / 2, (shape[1] - 1) / 2
    return (x - cx) ** 2 + (y - cy) ** 2 <= radius_px**2


def _write_png(images, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(images), figsize=(4.2 * len(images), 3.8))
    for ax, (name, img) in zip(np.atleast_1d(axes), images.items()):
        shown = ax.imshow(img.T, origin="lower", extent=(5, 15, 5, 15), cmap="inferno")
        ax.set_title(f"{name}: tumour 3 mm deep")
        ax.set_xlabel("x (mm)")
        ax.set_ylabel("y (mm)")
        fig.colorbar(shown, ax=ax, label="electrons")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
