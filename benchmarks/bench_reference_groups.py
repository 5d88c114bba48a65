"""A NumPy-reference workload shaped like the study's small runs, for before/after timing of whole
processes (e.g. interleaved against an older checkout on PYTHONPATH): the default study's phantom
cropped as the target correction crops it at 1.25 mm, the 808 nm disk beam, 10 launches of 1000
photons (the correction's batching), then 20000 photons at the default batching (10 x 2000)."""
from photonqd.study import parse_config, default_config_text, target_centre
from photonqd.simulation import Simulation
from photonqd.sources import DiskSource
import photonqd, photonqd.target_correction as tc
cfg = parse_config(default_config_text())
scene = cfg.scene(1.25); ax = target_centre(scene)
crop = tc.crop_around(scene, ax, 13.0); s = tc._cropped(scene, crop).without_target()
medium, _ = s.medium([808], fluorophores=[])
src = DiskSource((ax[0] - crop.shift_mm[0], ax[1] - crop.shift_mm[1], 0.0), radius=10)
a = Simulation(medium, src, photons=10000, seed=1, batch_photons=1000).run("numpy")
b = Simulation(medium, src, photons=20000, seed=2).run("numpy")
print(photonqd.__file__, a.absorbed.sum(), b.absorbed.sum())   # which checkout ran; equal answers
