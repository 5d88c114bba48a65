"""How a study's answer moves across the terms it depends on but cannot know (``photonqd study
--sensitivity``; docs/detection.md, "Sensitivity").

Each factor is set, one at a time, to the low and the high end of its plausible range, all else at
the study's values; each variant is a whole adjoint study (its depth limits decided as the study's
are, photons added where a limit is not resolved). Variants of clutter and autofluorescence yield
change nothing in transport and reuse the study's field runs; the numerical aperture, the
tumour-to-background ratio and the QD concentration change the transport media or the camera's
cone, so those variants run their own fields. Every variant reuses the study's target corrections
(a ratio with and without the target's own optics, which these factors change at second order).

Reported per variant: each probe's depth limit with its interval, and each probe's limit over the
first probe's (e.g. NIR-II / NIR-I), the number the study is run to answer.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass

from .decision import DepthLimit


@dataclass(frozen=True)
class Factor:
    """One uncertain term: its configuration key and the low and high ends of its range. ``relative``:
    the ends multiply the study's value rather than replace it."""

    name: str
    key: str
    low: float
    high: float
    relative: bool
    basis: str


#: The factors and their ranges (docs/detection.md gives the bases).
FACTORS = (
    Factor("clutter", "background.clutter", 0.003, 0.03, False,
           "plausible relative background fluctuation between pixels, 0.3-3 %"),
    Factor("autofluorescence yield", "background.autofluorescence_scale", 0.1, 3.0, True,
           "the default yields are upper bounds for all tissues but the epidermis, uncertain by x3 there"),
    Factor("numerical aperture", "camera.numerical_aperture", 0.5, 2.0, True,
           "whole-animal macro lenses span about NA 0.02-0.1"),
    Factor("tumour-to-background", "probe.target_to_background", 2.0, 10.0, False,
           "EPR-only nanoparticles about 2-3, targeted probes up to about 10"),
    Factor("QD concentration", "probe.concentration_uM", 0.3, 3.0, True,
           "the dose reaching the target varies by several times between probes and animals"),
)
#: Factors whose variants reuse the study's field runs.
NO_TRANSPORT = ("background.clutter", "background.autofluorescence_scale")


@dataclass
class Variant:
    factor: str
    value: float                     # the factor's value in this variant (absolute)
    limits: dict                     # probe name -> DepthLimit

    def as_dict(self) -> dict:
        return {"factor": self.factor, "value": self.value,
                "limits": {p: dataclasses.asdict(v) for p, v in self.limits.items()}}


def limit_ratio(a: DepthLimit, b: DepthLimit) -> tuple[float, str]:
    """``a``'s depth limit over ``b``'s, and how to read it: "=" (both crossings), ">=" / "<=" (one
    of them a bound), "?" (undecided)."""
    known = {"crossing", "beyond"}
    if a.status not in known or b.status not in known or not b.estimate > 0:
        return math.nan, "?"
    ratio = a.estimate / b.estimate
    if a.status == "crossing" and b.status == "crossing":
        return ratio, "="
    if a.status == "beyond" and b.status == "crossing":
        return ratio, ">="
    if a.status == "crossing" and b.status == "beyond":
        return ratio, "<="
    return math.nan, "?"


def vary(config, factor: Factor, end: float):
    """``config`` with ``factor`` at ``end`` of its range (every probe's value for probe keys)."""
    table, name = factor.key.split(".")

    def value(old):
        return old * end if factor.relative else end

    if table == "probe":
        probes = [dataclasses.replace(p, **{name: value(getattr(p, name))}) for p in config.probes]
        return dataclasses.replace(config, probes=probes)
    settings = getattr(config, table)
    return dataclasses.replace(config, **{table: dataclasses.replace(settings, **{name: value(getattr(settings, name))})})


def _fields_for(base_fields, base_config, variant_config):
    """The study's field runs for a variant that changes no transport: the same runs, with the
    autofluorescence yields per layer rescaled (the adjoint runs do not depend on them)."""
    ratio = variant_config.background.autofluorescence_scale / base_config.background.autofluorescence_scale \
        if base_config.background.autofluorescence_scale else 1.0
    if ratio == 1.0:
        return base_fields
    fields = copy.copy(base_fields)
    fields.emissions = {probe: {name: (dataclasses.replace(e, layer_yield=e.layer_yield * ratio)
                                       if e.layer_yield is not None else e)
                                for name, e in emitters.items()}
                        for probe, emitters in base_fields.emissions.items()}
    return fields


def run_sensitivity(result, backend=None, progress=None, factors=None) -> list[Variant]:
    """The variants of a study ``result``, low and high end of each factor. An adjoint study run in
    this process lends its fields and corrections; otherwise (forward, or resumed from a file) the
    adjoint study of its configuration is run first."""
    from .adjoint_study import run_adjoint_study

    config = result.config
    if config.method != "adjoint" or result.fields is None:
        # a forward study, or one resumed from its file: the adjoint study's fields are run here
        config = dataclasses.replace(config, method="adjoint")
        result = run_adjoint_study(config, backend, progress=progress)
    out = []
    for factor in FACTORS if factors is None else factors:
        for end in (factor.low, factor.high):
            variant = vary(config, factor, end)
            fields = _fields_for(result.fields, config, variant) if factor.key in NO_TRANSPORT else None
            varied = run_adjoint_study(variant, backend, progress=progress, fields=fields,
                                       corrections=result.corrections)
            value = _value(variant, factor)
            out.append(Variant(factor.name, value, {p.name: varied.depth_limit(p.name) for p in config.probes}))
    return out


def _value(config, factor: Factor) -> float:
    table, name = factor.key.split(".")
    return getattr(config.probes[0] if table == "probe" else getattr(config, table), name)


def as_records(variants: list[Variant]) -> list[dict]:
    return [v.as_dict() for v in variants]


def from_records(records: list[dict]) -> list[Variant]:
    return [Variant(r["factor"], r["value"], {p: DepthLimit(**d) for p, d in r["limits"].items()}) for r in records]


def format_sensitivity(result, variants: list[Variant]) -> str:
    """The table: per factor and end, each probe's depth limit and its ratio to the first probe's."""
    probes = [p.name for p in result.config.probes]
    ref = probes[0]
    head = f"{'factor':24s}{'value':>9s}" + "".join(f"{p:>22s}" for p in probes) + \
        "".join(f"{p + '/' + ref:>16s}" for p in probes[1:])
    lines = ["sensitivity: depth limits (mm) with each factor at the ends of its range, all else as studied", head]

    def row(name, value, limits):
        text = f"{name:24s}{value:>9s}" + "".join(f"{limits[p].describe():>22s}" for p in probes)
        for p in probes[1:]:
            r, how = limit_ratio(limits[p], limits[ref])
            text += f"{(how + ' ' + format(r, '.3g')) if how != '?' else 'undecided':>16s}"
        return text

    lines.append(row("(as studied)", "", {p: result.depth_limit(p) for p in probes}))
    for v in variants:
        lines.append(row(v.factor, f"{v.value:.3g}", v.limits))
    return "\n".join(lines)
