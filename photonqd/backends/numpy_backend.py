"""NumPy reference backend: the executable specification of kernels/transport.cl.

Photon-parallel and vectorised: every live photon takes one step per loop iteration, and each
event is handled with masks. It follows the kernel step by step and draws random numbers in the
same order (comments "draw: …" match the kernel's), in float64 where the kernel uses float32.
It is for tests and machines with nothing else, not for production speed.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..kernel_source import FP, IP, KernelPlan
from ..medium import BC_CODES
from ..rng import PhotonStreams
from ..sources import SOURCE_CODES
from ..tallies import EVENTS, FIX_TRACK, FIX_WEIGHT, SCALAR_SLOTS

C0 = 299.792458  # mm/ns
ESCAPE, MIRROR, CYCLIC = BC_CODES["escape"], BC_CODES["mirror"], BC_CODES["cyclic"]
_BC_SWITCHES = ("PQ_BC_XMIN", "PQ_BC_XMAX", "PQ_BC_YMIN", "PQ_BC_YMAX", "PQ_BC_ZMIN", "PQ_BC_ZMAX")


class BatchOutput(NamedTuple):
    """What every backend's runner returns for one batch."""

    tally: np.ndarray            # int64 fixed-point tallies (photonqd.tallies.TallyLayout)
    trace: np.ndarray | None     # (n_traced, trace_len, 8) or None
    records: np.ndarray          # (n, 8) detected-photon rows kept in this batch


def fix_weight(w):
    """Fixed-point weight, rounded half to even like the kernel's PQ_TO_I64."""
    return np.rint(np.asarray(w) * FIX_WEIGHT).astype(np.int64)


def fresnel(n1, n2, cos_i):
    """Unpolarised Fresnel reflectance and transmitted cosine (R = 1 under total reflection)."""
    eta = n1 / n2
    sin_t2 = eta * eta * (1.0 - cos_i * cos_i)
    tir = sin_t2 >= 1.0
    ct = np.sqrt(np.where(tir, 0.0, 1.0 - sin_t2))
    with np.errstate(invalid="ignore", divide="ignore"):
        rs = (n1 * cos_i - n2 * ct) / (n1 * cos_i + n2 * ct)
        rp = (n1 * ct - n2 * cos_i) / (n1 * ct + n2 * cos_i)
    r = np.where(tir, 1.0, 0.5 * (rs * rs + rp * rp))
    return r, ct


def refract(u, axis, eta, cos_t):
    """Snell refraction of directions u (m, 3) through faces normal to ``axis`` (m,)."""
    rows = np.arange(len(axis))
    normal = np.where(u[rows, axis] > 0, cos_t, -cos_t)
    u *= eta[:, None]
    u[rows, axis] = normal
    return u


def henyey_greenstein(u, g, xi_cos, xi_phi):
    """New directions after HG scattering; same formulas as pq_scatter in the kernel."""
    small = np.abs(g) < 1e-6
    gs = np.where(small, 0.5, g)  # avoids 0/0 where the isotropic branch is taken
    f = (1.0 - gs * gs) / (1.0 - gs + 2.0 * gs * xi_cos)
    ct = np.where(small, 2.0 * xi_cos - 1.0, (1.0 + gs * gs - f * f) / (2.0 * gs))
    ct = np.clip(ct, -1.0, 1.0)
    st = np.sqrt(1.0 - ct * ct)
    phi = np.pi * (2.0 * xi_phi - 1.0)
    cp, sp = np.cos(phi), np.sin(phi)
    ux, uy, uz = u[:, 0], u[:, 1], u[:, 2]
    polar = np.abs(uz) > 0.99999
    r = np.sqrt(np.where(polar, 1.0, 1.0 - uz * uz))
    out = np.empty_like(u)
    q = st / r
    out[:, 0] = np.where(polar, st * cp, q * (ux * uz * cp - uy * sp) + ux * ct)
    out[:, 1] = np.where(polar, st * sp, q * (uy * uz * cp + ux * sp) + uy * ct)
    out[:, 2] = np.where(polar, np.where(uz > 0, ct, -ct), -st * cp * r + uz * ct)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


class NumpyBackend:
    name = "numpy"
    device = "CPU (NumPy reference)"
    default_batch = 10_000
    min_batch = 2_000

    def prepare(self, plan: KernelPlan) -> "NumpyRunner":
        return NumpyRunner(plan)

    def rng_stream(self, seed: int, photon_ids, count: int, as_uniform: bool = False) -> np.ndarray:
        """First ``count`` words (or uniforms) of each photon's stream."""
        streams = PhotonStreams(seed, np.asarray(photon_ids, dtype=np.uint64))
        everyone = np.arange(len(streams.drawn))
        draw = streams.uniform if as_uniform else streams.words
        return np.stack([draw(everyone) for _ in range(count)], axis=1)


class NumpyRunner:
    def __init__(self, plan: KernelPlan):
        self.plan = plan
        fp = plan.fp.astype(np.float64)
        self.fp = fp
        self.ip = plan.ip
        self.d = fp[[FP["DX"], FP["DY"], FP["DZ"]]]
        self.nv = np.array(plan.shape, dtype=np.int64)
        self.extent = self.nv * self.d
        self.labels = plan.labels.reshape(plan.shape)
        self.optics = plan.optics.astype(np.float64)
        self.bc = np.array([plan.switches[s] for s in _BC_SWITCHES])
        self.n_species = plan.switches["PQ_NSPECIES"]
        n_bins = int(plan.ip[IP["NBIN"]])
        if self.n_species:
            self.concentration = plan.concentration.reshape(self.n_species, -1).astype(np.float64)
            self.species_absorption = plan.species_absorption.reshape(self.n_species, n_bins) \
                .astype(np.float64)

    # --- helpers ---------------------------------------------------------------------------
    def _flat(self, v):
        return (v[:, 0] * self.nv[1] + v[:, 1]) * self.nv[2] + v[:, 2]

    def _to_boundary(self, p, u, v):
        """Distance to the next voxel face along u and that face's axis (first axis on ties)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            plane = (v + (u > 0)) * self.d
            dist = np.where(u != 0, np.maximum((plane - p) / u, 0.0), np.inf)
        axis = np.argmin(dist, axis=1)
        return dist[np.arange(len(axis)), axis], axis

    def _add(self, index, values):
        """Add int64 values to tally entries ``index`` (one slot, or one index per value)."""
        if np.ndim(index) == 0:
            self.tally[index] += int(np.sum(values))
        else:
            np.add.at(self.tally, index, values)

    def _record(self, idx, event):
        if self.trace is None or len(idx) == 0:
            return
        idx = idx[self.trace_slot[idx] >= 0]
        idx = idx[self.trace_count[idx] < self.plan.trace_len]
        if len(idx) == 0:
            return
        rec = np.concatenate([self.p[idx], self.u[idx], self.w[idx, None],
                              np.full((len(idx), 1), float(event))], axis=1)
        self.trace[self.trace_slot[idx], self.trace_count[idx]] = rec
        self.trace_count[idx] += 1

    # --- one batch -------------------------------------------------------------------------
    def run(self, first: int, n: int):
        plan, fp, sw = self.plan, self.fp, self.plan.switches
        scalar = plan.layout.off_scalar
        self.tally = np.zeros(plan.layout.size, dtype=np.int64)
        ids = np.uint64(first) + np.arange(n, dtype=np.uint64)
        rng = PhotonStreams(plan.seed, ids, stream=int(self.ip[IP["STREAM"]]))
        self.records = []
        self.offered = 0
        self.trace = None
        if sw["PQ_TRACE"]:
            self.trace = np.full((len(plan.trace_ids), plan.trace_len, 8), np.nan)
            slot = {int(t): i for i, t in enumerate(plan.trace_ids)}
            self.trace_slot = np.array([slot.get(int(i), -1) for i in ids], dtype=np.int64)
            self.trace_count = np.zeros(n, dtype=np.int64)

        everyone = np.arange(n)
        p = np.tile(fp[FP["SRC_POS"]:FP["SRC_POS"] + 3], (n, 1))
        u = np.tile(fp[FP["SRC_DIR"]:FP["SRC_DIR"] + 3], (n, 1))
        e1 = fp[FP["SRC_E1"]:FP["SRC_E1"] + 3]
        e2 = fp[FP["SRC_E2"]:FP["SRC_E2"] + 3]
        kind = sw["PQ_SOURCE"]
        if kind in (SOURCE_CODES["gaussian"], SOURCE_CODES["disk"]):
            xi = rng.uniform(everyone)                                   # draw: radius
            phi = np.pi * (2 * rng.uniform(everyone) - 1)                      # draw: azimuth
            size = fp[FP["SRC_SIZE"]]
            r = size * (np.sqrt(-0.5 * np.log(xi)) if kind == SOURCE_CODES["gaussian"] else np.sqrt(xi))
            p += (r * np.cos(phi))[:, None] * e1 + (r * np.sin(phi))[:, None] * e2
        elif kind == SOURCE_CODES["rectangle"]:
            xa = rng.uniform(everyone)                                   # draw: along edge 1
            xb = rng.uniform(everyone)                                   # draw: along edge 2
            p += xa[:, None] * e1 + xb[:, None] * e2
        elif kind == SOURCE_CODES["isotropic"]:
            ct = 2 * rng.uniform(everyone) - 1                           # draw: cos theta
            phi = np.pi * (2 * rng.uniform(everyone) - 1)                      # draw: phi
            st = np.sqrt(np.maximum(1 - ct * ct, 0))
            u = np.stack([st * np.cos(phi), st * np.sin(phi), ct], axis=1)
        bins = np.full(n, int(self.ip[IP["SRC_BIN"]]))
        emission = kind == SOURCE_CODES["emission"]
        if emission:
            p, u, v, bins = self._launch_emission(rng, everyone)
        self.p, self.u = p, u
        self.w = np.ones(n)
        t = np.zeros(n)
        s = np.zeros(n)
        alive = np.ones(n, dtype=bool)
        axis = np.full(n, 2)
        from_ambient = np.zeros(n, dtype=bool)

        # Enter the grid: starts outside the box or on its surface move to the entry point.
        outside = ~np.all((p > 0) & (p < self.extent), axis=1) & (not emission)
        o = everyone[outside]
        if len(o):
            po, uo = p[o], u[o]
            with np.errstate(divide="ignore", invalid="ignore"):
                t0, t1 = -po / uo, (self.extent - po) / uo
            parallel = uo == 0
            tn = np.where(parallel, -np.inf, np.minimum(t0, t1))
            tf = np.where(parallel, np.where((po <= 0) | (po >= self.extent), -np.inf, np.inf),
                          np.maximum(t0, t1))
            ax = np.argmax(tn, axis=1)
            t_in = tn[np.arange(len(o)), ax]
            t_out = tf.min(axis=1)
            miss = t_out <= np.maximum(t_in, 0)
            self._add(scalar + SCALAR_SLOTS["MISSED"], fix_weight(self.w[o[miss]]))
            self._record(o[miss], EVENTS["MISSED"])
            alive[o[miss]] = False
            hit, ax, t_in = o[~miss], ax[~miss], t_in[~miss]
            p[hit] += np.maximum(t_in, 0)[:, None] * u[hit]
            p[hit, ax] = np.where(u[hit, ax] > 0, 0.0, self.extent[ax])
            axis[hit] = ax
            from_ambient[hit] = True

        if not emission:  # an emission photon already knows its voxel
            f = p / self.d
            v = np.floor(f).astype(np.int64)
            v -= ((v == f) & (u < 0)).astype(np.int64)           # on a face: the voxel ahead
            v = np.clip(v, 0, self.nv - 1)
        label = np.zeros(n, dtype=np.int64)
        label[alive] = self.labels.ravel()[self._flat(v[alive])]

        # Ambient voxels at the start are crossed without interaction until tissue is reached.
        while True:
            amb = everyone[alive & (label == 0)]
            if not len(amb):
                break
            from_ambient[amb] = True
            dist, ax = self._to_boundary(p[amb], u[amb], v[amb])
            axis[amb] = ax
            p[amb] += dist[:, None] * u[amb]
            step = np.where(u[amb, ax] > 0, 1, -1)
            p[amb, ax] = (v[amb, ax] + (step > 0)) * self.d[ax]
            v[amb, ax] += step
            gone = (v[amb, ax] < 0) | (v[amb, ax] >= self.nv[ax])
            self._add(scalar + SCALAR_SLOTS["MISSED"], fix_weight(self.w[amb[gone]]))
            self._record(amb[gone], EVENTS["MISSED"])
            alive[amb[gone]] = False
            inb = amb[~gone]
            label[inb] = self.labels.ravel()[self._flat(v[inb])]

        n_amb = fp[FP["N_AMBIENT"]]
        if sw["PQ_SPECULAR"]:
            e = everyone[alive & from_ambient]
            n_in = self.optics[bins[e], label[e], 3]
            e, n_in = e[n_in != n_amb], n_in[n_in != n_amb]
            ax = axis[e]
            r, cos_t = fresnel(n_amb, n_in, np.abs(u[e, ax]))
            w_in = self.w[e] * (1 - r)
            self._add(scalar + SCALAR_SLOTS["SPECULAR"], fix_weight(self.w[e]) - fix_weight(w_in))
            self.w[e] = w_in
            total = r >= 1
            self._record(e[total], EVENTS["MISSED"])
            alive[e[total]] = False
            keep = ~total
            u[e[keep]] = refract(u[e[keep]], ax[keep], n_amb / n_in[keep], cos_t[keep])
        self._record(everyone[alive], EVENTS["LAUNCH"])

        self._transport(everyone[alive], p, u, v, label, bins, t, s, rng)
        self._add(scalar + SCALAR_SLOTS["DETECTED"], np.int64(self.offered))
        records = np.concatenate(self.records) if self.records else np.zeros((0, 8))
        return BatchOutput(self.tally, self.trace, records[:plan.record_capacity])

    def _launch_emission(self, rng, idx):
        """Voxel from the alias table, uniform point inside it, isotropic direction, wavelength bin."""
        m = int(self.ip[IP["EM_COUNT"]])
        voxels, alias = self.plan.emission_u32[:m], self.plan.emission_u32[m:2 * m]
        accept, cdf = self.plan.emission_f32[:m], self.plan.emission_f32[m:]
        k = np.minimum((rng.uniform(idx) * m).astype(np.int64), m - 1)    # draw: table entry
        keep = rng.uniform(idx) < accept[k]                               # draw: accept or alias
        flat = voxels[np.where(keep, k, alias[k])].astype(np.int64)
        v = np.stack([flat // (self.nv[1] * self.nv[2]), (flat // self.nv[2]) % self.nv[1],
                      flat % self.nv[2]], axis=1)
        offset = np.stack([rng.uniform(idx) for _ in range(3)], axis=1)  # draw: x, y, z in voxel
        p = (v + offset) * self.d
        ct = 2 * rng.uniform(idx) - 1                                     # draw: cos theta
        phi = np.pi * (2 * rng.uniform(idx) - 1)                          # draw: phi
        st = np.sqrt(np.maximum(1 - ct * ct, 0))
        u = np.stack([st * np.cos(phi), st * np.sin(phi), ct], axis=1)
        xi = rng.uniform(idx)                                             # draw: wavelength bin
        bins = np.minimum(np.searchsorted(cdf.astype(np.float64), xi, side="left"), len(cdf) - 1)
        return p, u, v, bins

    def _transport(self, act, p, u, v, label, bins, t, s, rng):
        fp, sw, plan = self.fp, self.plan.switches, self.plan
        scalar = plan.layout.off_scalar
        off_fluence = plan.layout.off_fluence
        labels_flat = self.labels.ravel()
        n_amb = fp[FP["N_AMBIENT"]]
        w = self.w
        while len(act):
            need = act[s[act] <= 0]
            s[need] = -np.log(rng.uniform(need))                         # draw: free path
            props = self.optics[bins[act], label[act]]
            mua, mus, g, n = props[:, 0], props[:, 1], props[:, 2], props[:, 3]
            flat = self._flat(v[act])
            if self.n_species:  # fluorophores add to the tissue's absorption at every wavelength
                mua_species = self.concentration[:, flat] * self.species_absorption[:, bins[act]]
                mua = mua + mua_species.sum(axis=0)
            dist, axis = self._to_boundary(p[act], u[act], v[act])
            event = np.full(len(act), EVENTS["CROSS"])
            with np.errstate(divide="ignore", invalid="ignore"):
                scat = (mus > 0) & (s[act] <= dist * mus)
                dist = np.where(scat, s[act] / mus, dist)
            event[scat] = EVENTS["SCATTER"]
            if sw["PQ_TIME_GATE"]:
                d_gate = (fp[FP["T_GATE"]] - t[act]) * C0 / n
                gated = d_gate <= dist
                dist = np.where(gated, np.maximum(d_gate, 0), dist)
                event[gated] = EVENTS["GATE"]
            p[act] += dist[:, None] * u[act]
            t[act] += dist * n / C0
            w_new = w[act] * np.exp(-mua * dist)
            deposit = fix_weight(w[act]) - fix_weight(w_new)
            self._add(flat, deposit)
            for sp in range(self.n_species):  # each species' share of the absorbed weight
                with np.errstate(divide="ignore", invalid="ignore"):
                    share = np.where(mua > 0, mua_species[sp] / mua, 0.0)
                self._add(plan.layout.off_species + sp * len(labels_flat) + flat,
                          np.rint(deposit * share).astype(np.int64))
            if sw["PQ_FLUENCE"]:  # track-length estimator: integral of the weight along the step
                with np.errstate(divide="ignore", invalid="ignore"):
                    track = np.where(mua > 0, (w[act] - w_new) / mua, w[act] * dist)
                self._add(off_fluence + flat, np.rint(track * FIX_TRACK).astype(np.int64))
            w[act] = w_new
            s[act] = np.where(scat, 0.0, s[act] - dist * mus)

            gate = act[event == EVENTS["GATE"]]
            self._add(scalar + SCALAR_SLOTS["ALIVE"], fix_weight(w[gate]))
            self._record(gate, EVENTS["GATE"])

            sc = event == EVENTS["SCATTER"]
            sidx = act[sc]
            dead = [gate]
            if len(sidx):
                xi_cos = rng.uniform(sidx)                               # draw: cos theta
                xi_phi = rng.uniform(sidx)                               # draw: phi
                u[sidx] = henyey_greenstein(u[sidx], g[sc], xi_cos, xi_phi)
                self._add(scalar + SCALAR_SLOTS["INTERACTIONS"], np.full(len(sidx), 1, np.int64))
                self._record(sidx, EVENTS["SCATTER"])
                low = sidx[w[sidx] < fp[FP["ROULETTE_W"]]]
                if len(low):
                    m = fp[FP["ROULETTE_M"]]
                    survive = rng.uniform(low) * m < 1.0                 # draw: roulette
                    up, lost = low[survive], low[~survive]
                    self._add(scalar + SCALAR_SLOTS["ROULETTE"],
                              fix_weight(w[up] * m) - fix_weight(w[up]))
                    w[up] *= m
                    self._add(scalar + SCALAR_SLOTS["ROULETTE"], -fix_weight(w[lost]))
                    w[lost] = 0.0
                    self._record(lost, EVENTS["ROULETTE"])
                    dead.append(lost)

            cr = event == EVENTS["CROSS"]
            if cr.any():
                dead.append(self._cross(act[cr], axis[cr], n[cr], p, u, v, label, bins, t,
                                        labels_flat, n_amb, rng))
            act = np.setdiff1d(act, np.concatenate(dead), assume_unique=True)

    def _cross(self, c, ax, n, p, u, v, label, bins, t, labels_flat, n_amb, rng):
        """Photons ``c`` on a face of their voxel normal to ``ax``; returns those that leave."""
        scalar = self.plan.layout.off_scalar
        w = self.w
        step = np.where(u[c, ax] > 0, 1, -1)
        p[c, ax] = (v[c, ax] + (step > 0)) * self.d[ax]
        nxt = v[c, ax] + step
        outside = (nxt < 0) | (nxt >= self.nv[ax])
        face = 2 * ax + (step > 0)
        bc = np.where(outside, self.bc[face], ESCAPE)

        mirror = outside & (bc == MIRROR)
        u[c[mirror], ax[mirror]] *= -1
        self._record(c[mirror], EVENTS["REFLECT"])
        cyclic = outside & (bc == CYCLIC)
        nxt[cyclic] = np.where(step[cyclic] > 0, 0, self.nv[ax[cyclic]] - 1)
        outside &= ~cyclic

        go = ~mirror
        c, ax, n, step, nxt, outside, face = (x[go] for x in (c, ax, n, step, nxt, outside, face))
        vn = v[c].copy()
        vn[np.arange(len(c)), ax] = nxt
        next_label = np.where(outside, 0, labels_flat[self._flat(np.where(outside[:, None], 0, vn))])
        n_next = np.where(next_label == 0, n_amb, self.optics[bins[c], next_label, 3])

        reflect = np.zeros(len(c), dtype=bool)
        mism = np.flatnonzero(n_next != n)
        if len(mism):
            r, cos_t = fresnel(n[mism], n_next[mism], np.abs(u[c[mism], ax[mism]]))
            reflect[mism] = rng.uniform(c[mism]) < r                     # draw: reflect or refract
            refl, thru = mism[reflect[mism]], mism[~reflect[mism]]
            u[c[refl], ax[refl]] *= -1
            self._record(c[refl], EVENTS["REFLECT"])
            rr = ~reflect[mism]
            u[c[thru]] = refract(u[c[thru]], ax[thru], n[thru] / n_next[thru], cos_t[rr])

        leave = ~reflect & (next_label == 0)
        out = c[leave]
        slots = np.where(outside[leave], SCALAR_SLOTS["ESCAPE"] + face[leave],
                         SCALAR_SLOTS["ESCAPE_AMBIENT"])
        self._add(scalar + slots, fix_weight(w[out]))
        if self.plan.switches["PQ_EXIT_MAP"]:
            fp, ip = self.fp, self.ip
            top = out[outside[leave] & (face[leave] == 4)]
            top = top[-u[top, 2] >= fp[FP["MAP_COS"]]]
            px = np.floor((p[top, 0] - fp[FP["MAP_X0"]]) / fp[FP["MAP_PX"]]).astype(np.int64)
            py = np.floor((p[top, 1] - fp[FP["MAP_Y0"]]) / fp[FP["MAP_PY"]]).astype(np.int64)
            inmap = (px >= 0) & (px < ip[IP["MAP_NX"]]) & (py >= 0) & (py < ip[IP["MAP_NY"]])
            pix = ip[IP["OFF_MAP"]] + px[inmap] * ip[IP["MAP_NY"]] + py[inmap]
            scored = top[inmap]
            self._add(pix, fix_weight(w[scored] * self.plan.bin_efficiency[bins[scored]]))
            self.offered += len(scored)
            if self.plan.record_capacity:
                self.records.append(np.column_stack([
                    p[scored, 0], p[scored, 1], u[scored], bins[scored], w[scored], t[scored]]))
        self._record(out, EVENTS["ESCAPE"])

        move = ~reflect & (next_label != 0)
        mv, axm, nm, stepm = c[move], ax[move], nxt[move], step[move]
        wrapped = nm != v[mv, axm] + stepm
        p[mv[wrapped], axm[wrapped]] = np.where(stepm[wrapped] > 0, 0.0,
                                                self.extent[axm[wrapped]])
        v[mv, axm] = nm
        label[mv] = next_label[move]
        self._record(mv, EVENTS["CROSS"])
        return out
