"""The [multiplex] table of a study configuration: N QD species co-located in the target under one
excitation, read through C detection channels (photonqd.multiplex runs it).

::

    [multiplex]
    species = ["pbs_cds_1100", "ag2s_1200", "pbs_cds_1300", "pbs_cds_1550"]   # presets or [quantum_dot.*]
    concentration_uM = 0.1        # of each species in the target (or one number per species)
    channels = "auto"             # one per species (see auto_channels), or [[multiplex.channel]] tables
    sensor = "ingaas_standard"    # every channel's unless it names its own
    crosstalk_depth_mm = 2.0      # the depth whose crosstalk matrix the table and plot show
    autofluorescence = "subtracted"   # or "component" (see photonqd.multiplex)

    [[multiplex.channel]]         # instead of "auto": name, window_nm, sensor
    name = "1100"
    window_nm = [1050, 1150]
    sensor = "ingaas_standard"

The study runs one probe per channel and species (photonqd.study.config.Probe, named
"CHANNEL | SPECIES"): the QD of the species seen through the channel's filter and sensor. The
species carry no non-specific uptake (target_to_background = inf): the channels' backgrounds are
then the tissue's autofluorescence and the excitation's leakage, the same for every species.
Checks raise a ValueError naming the key ("multiplex.species: ..."); the configuration reader
reports it as a ConfigError.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .materials import check_number, unknown_keys

#: Most species and channels (the engine's species are not involved: each pair is its own probe,
#: but each costs adjoint runs).
MAX_SPECIES = 8
MAX_CHANNELS = 12
#: Windows a channel may have (nm), as a probe's.
WINDOW_NM = (300.0, 2000.0)
#: Gap (nm) an "auto" channel keeps from the excitation wavelength.
EXCITATION_GAP_NM = 20.0
KEYS = ("species", "concentration_uM", "channels", "channel", "sensor", "crosstalk_depth_mm", "autofluorescence")
#: How unmixing treats autofluorescence: removed with the background region's level (the contrast,
#: as the study's CNR), or an extra component of the target region's light, its level unknown.
AUTOFLUORESCENCE = ("subtracted", "component")
SEPARATOR = " | "


@dataclass(frozen=True)
class Channel:
    """One detection channel: a band-pass window (nm) and a sensor."""

    name: str
    window_nm: tuple[float, float]
    sensor: str


@dataclass(frozen=True)
class MultiplexSettings:
    species: tuple[str, ...]
    concentration_uM: tuple[float, ...]
    channels: tuple[Channel, ...]
    crosstalk_depth_mm: float = 2.0
    autofluorescence: str = "subtracted"

    def probe_name(self, channel: Channel, species: str) -> str:
        return f"{channel.name}{SEPARATOR}{species}"

    def to_tables(self) -> tuple[dict, list[dict]]:
        """The [multiplex] table and its [[multiplex.channel]] tables, channels written out."""
        table = {"species": list(self.species), "concentration_uM": list(self.concentration_uM),
                 "crosstalk_depth_mm": self.crosstalk_depth_mm, "autofluorescence": self.autofluorescence}
        return table, [{"name": c.name, "window_nm": list(c.window_nm), "sensor": c.sensor} for c in self.channels]


def emission_band(emission) -> tuple[float, float, float]:
    """(peak, low, high) nm of an emission spectrum: its maximum and where it falls to half."""
    grid = np.arange(300.0, 3000.0, 0.5)
    pdf = emission.pdf(grid)
    k = int(np.argmax(pdf))
    above = pdf >= pdf[k] / 2
    lo = k - int(np.argmin(above[k::-1])) + 1 if not above[:k + 1].all() else 0
    hi = k + int(np.argmin(above[k:])) - 1 if not above[k:].all() else len(grid) - 1
    return float(grid[k]), float(grid[lo]), float(grid[hi])


def auto_channels(species, materials, excitation_nm: float, sensor: str) -> tuple[Channel, ...]:
    """One channel per species: its emission's half-maximum band, cut at the midpoints between
    neighbouring peaks (so the channels do not overlap) and kept EXCITATION_GAP_NM from the
    excitation; named after the peak (nm)."""
    bands = sorted((emission_band(materials.quantum_dot(s).emission), s) for s in species)
    channels = []
    for i, ((peak, lo, hi), name) in enumerate(bands):
        if i > 0:
            lo = max(lo, 0.5 * (bands[i - 1][0][0] + peak))
        if i + 1 < len(bands):
            hi = min(hi, 0.5 * (peak + bands[i + 1][0][0]))
        if lo <= excitation_nm + EXCITATION_GAP_NM <= hi or (lo < excitation_nm < hi):
            lo = excitation_nm + EXCITATION_GAP_NM
        lo, hi = max(lo, WINDOW_NM[0]), min(hi, WINDOW_NM[1])
        if not lo < hi:
            raise ValueError(f"multiplex.channels: no \"auto\" channel fits {name} (its band lies within "
                             f"{EXCITATION_GAP_NM:g} nm of the excitation, under a neighbour's or outside "
                             f"{WINDOW_NM[0]:g}-{WINDOW_NM[1]:g} nm); give [[multiplex.channel]] tables")
        channels.append(Channel(f"{peak:.0f} nm", (round(lo, 1), round(hi, 1)), sensor))
    return tuple(channels)


def read_multiplex(table: dict, materials, excitation_nm: float) -> MultiplexSettings:
    """The [multiplex] table, checked; "auto" channels resolved."""
    unknown_keys(table, KEYS, "multiplex")
    species = table.get("species")
    if not isinstance(species, list) or not 1 <= len(species) <= MAX_SPECIES \
            or not all(isinstance(s, str) for s in species) or len(set(species)) != len(species):
        raise ValueError(f"multiplex.species: expected a list of 1 to {MAX_SPECIES} different QD names, got {species!r}")
    for s in species:
        if s not in materials.quantum_dot_names():
            raise ValueError(f"multiplex.species: {s!r} is not one of {materials.quantum_dot_names()}")
    c = table.get("concentration_uM", 0.1)
    c = [c] * len(species) if not isinstance(c, list) else c
    if len(c) != len(species):
        raise ValueError(f"multiplex.concentration_uM: one number, or one per species ({len(species)}), got {c!r}")
    concentration = tuple(check_number("multiplex.concentration_uM", v, 1e-9, 1e4) for v in c)
    sensor = table.get("sensor", "ingaas_standard")
    if sensor not in materials.sensor_names():
        raise ValueError(f"multiplex.sensor: {sensor!r} is not one of {materials.sensor_names()}")
    given = table.get("channel")
    mode = table.get("channels", "auto" if given is None else "given")
    if given is None:
        if mode != "auto":
            raise ValueError(f"multiplex.channels: \"auto\" or [[multiplex.channel]] tables, got {mode!r}")
        channels = auto_channels(species, materials, excitation_nm, sensor)
    else:
        if "channels" in table:
            raise ValueError("multiplex.channels: give channels = \"auto\" or [[multiplex.channel]] tables, not both")
        channels = _channels(given, materials, excitation_nm, sensor)
    for i, ch in enumerate(channels):
        if not materials.sees(ch.sensor, ch.window_nm):
            where = "multiplex.sensor" if given is None or "sensor" not in given[i] else f"multiplex.channel[{i}].sensor"
            raise ValueError(f"{where}: {ch.sensor} has no quantum efficiency in channel {ch.name!r} "
                             f"({ch.window_nm[0]:g}-{ch.window_nm[1]:g} nm); choose a sensor that sees it")
    depth = check_number("multiplex.crosstalk_depth_mm", table.get("crosstalk_depth_mm", 2.0), 0.0, 1000.0)
    af = table.get("autofluorescence", "subtracted")
    if af not in AUTOFLUORESCENCE:
        raise ValueError(f"multiplex.autofluorescence: {af!r} is not one of {list(AUTOFLUORESCENCE)}")
    if af == "component" and len(channels) <= len(species):
        raise ValueError(f"multiplex.autofluorescence: \"component\" unmixes autofluorescence as one more "
                         f"component and needs more channels than species; got {len(channels)} channels for "
                         f"{len(species)} species (add a [[multiplex.channel]] for it)")
    return MultiplexSettings(tuple(species), concentration, channels, depth, af)


def _channels(given, materials, excitation_nm: float, sensor: str) -> tuple[Channel, ...]:
    if not isinstance(given, list) or not 1 <= len(given) <= MAX_CHANNELS:
        raise ValueError(f"multiplex.channel: expected 1 to {MAX_CHANNELS} [[multiplex.channel]] tables")
    out = []
    for i, ch in enumerate(given):
        where = f"multiplex.channel[{i}]"
        if not isinstance(ch, dict):
            raise ValueError(f"{where}: expected a table, got {ch!r}")
        unknown_keys(ch, ("name", "window_nm", "sensor"), where)
        name = ch.get("name", f"channel{i}")
        if not isinstance(name, str) or not name.strip() or "/" in name or SEPARATOR.strip() in name:
            raise ValueError(f"{where}.name: a non-empty name without '/' or '|', got {name!r}")
        window = ch.get("window_nm")
        if not isinstance(window, list) or len(window) != 2:
            raise ValueError(f"{where}.window_nm: expected [low, high] nm, got {window!r}")
        lo, hi = (check_number(f"{where}.window_nm", v, *WINDOW_NM) for v in window)
        if not lo < hi:
            raise ValueError(f"{where}.window_nm: low must be below high, got {window!r}")
        if lo <= excitation_nm <= hi:
            raise ValueError(f"{where}.window_nm: the window contains the excitation wavelength ({excitation_nm:g} nm)")
        own = ch.get("sensor", sensor)
        if own not in materials.sensor_names():
            raise ValueError(f"{where}.sensor: {own!r} is not one of {materials.sensor_names()}")
        out.append(Channel(name, (lo, hi), own))
    if len({c.name for c in out}) != len(out):
        raise ValueError("multiplex.channel: names must be unique")
    return tuple(out)
