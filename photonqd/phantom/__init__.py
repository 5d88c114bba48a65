"""Phantoms: voxel volumes built from shapes, MCX's benchmark problems and the fluorescence scenes.

Every phantom is a photonqd.scene.Scene (the benchmarks wrap theirs with a source and a time gate in
a Benchmark). Modules: ``shapes`` (grids, masks, layers; MCX's voxelisation rule), ``mcx`` (MCX's
benchmarks and tissue60, read from their one definition, phantoms/mcx_benchmarks.json) and
``scenes`` (skin tumour, Intralipid capillary, mouse head, lymph node, with their citations).
All lengths are in mm in the grid frame (origin at the volume's corner, +z into the tissue);
``voxel_size`` only sets the resolution.
"""

import functools

from .mcx import Benchmark, benchmark, definitions, names
from .mcx_input import from_mcx
from .scenes import (CITATIONS, LYMPH_NODE_LAYERS, LYMPH_NODE_SEMI_AXES_MM, MOUSE_HEAD_LAYERS, SKIN_LAYERS,
                     intralipid_capillary, lymph_node, mouse_head, skin_tumour, target_centre_mm, water_tissue)
from .shapes import cylinder_mask, ellipsoid_mask, grid_shape, layer_labels, sphere_mask, voxel_centres

#: Every benchmark problem by name (``photonqd bench``, benchmarks/bench_mcxcl.py): MCX's and tissue60,
#: each a callable taking benchmark()'s overrides.
BENCHMARKS = {name: functools.partial(benchmark, name) for name in names()}
#: MCX's own benchmarks (tissue60 is photonqd's).
MCX_BENCHMARKS = {name: make for name, make in BENCHMARKS.items() if name != "tissue60"}
#: The fluorescence scene generators by name (the depth study's ``phantom``).
SCENES = {f.__name__: f for f in (skin_tumour, intralipid_capillary, mouse_head, lymph_node)}

__all__ = ["BENCHMARKS", "Benchmark", "CITATIONS", "LYMPH_NODE_LAYERS", "LYMPH_NODE_SEMI_AXES_MM",
           "MCX_BENCHMARKS", "MOUSE_HEAD_LAYERS", "SCENES", "SKIN_LAYERS", "benchmark", "cylinder_mask",
           "definitions", "ellipsoid_mask", "from_mcx", "grid_shape", "intralipid_capillary", "layer_labels",
           "lymph_node", "mouse_head", "names", "skin_tumour", "sphere_mask", "target_centre_mm", "voxel_centres",
           "water_tissue"]
