"""NumPy reference backend: the executable specification of kernels/transport.cl.

Shaped like the kernel: each function here carries the name of the kernel function it specifies
(``launch_photons`` = pq_launch, ``cone`` = pq_cone, ``draw_bin`` = pq_draw_bin, ``enter`` = pq_enter, ``propagate`` = pq_propagate, ``scatter`` =
pq_scatter, ``cross`` = the face crossing in pq_propagate, ``score_exit`` = pq_score_exit,
``voxel_enter`` / ``settle`` = pq_voxel_enter / pq_settle, ``fresnel``, ``refract``,
``isotropic``), in the kernel's order, and draws random numbers in the same order ("draw:"
comments match the kernel's). Tallies are settled per voxel visit as in the kernel, so both round
the same sums. Vectorised over photons: every live photon takes one step per loop iteration, and
each event is handled with index arrays; consecutive launches run together (``launch_many``), each
into its own tallies, so that the few long-lived photons at a launch's end, which cost a loop
iteration each as much as a full vector does, are paid for once per group. float64 where the
kernel uses float32. It is for tests and machines with nothing else, not for production speed.
"""

from __future__ import annotations

import numpy as np

from ..kernel_abi import (BC_CODES, BC_SWITCHES, C0_MM_PER_NS, EVENTS, FACES, FIX_TRACK, FIX_WEIGHT,
                          FP, IP, MAX_ROULETTE_GAIN, RECORD_FIELDS, SCALAR_SLOTS, SOURCE_CODES,
                          TRACE_FIELDS)
from ..kernel_source import KernelPlan
from ..rng import PhotonStreams
from .base import BatchOutput

ESCAPE, MIRROR, CYCLIC = BC_CODES["escape"], BC_CODES["mirror"], BC_CODES["cyclic"]
#: Limits of the launches transported together (ReferenceRunner.groups): photons in flight (about
#: 0.3 kB each) and the launches' tallies (int64, one volume set per launch).
GROUP_PHOTONS = 200_000
GROUP_TALLY_BYTES = 512 << 20


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
    u = u * eta[:, None]
    u[rows, axis] = normal
    return u


def scatter(u, g, xi_cos, xi_phi):
    """New directions after Henyey-Greenstein scattering (pq_scatter)."""
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


def isotropic(xi_cos, xi_phi):
    """Directions uniform on the sphere (pq_isotropic: cos theta, then phi)."""
    ct = 2.0 * xi_cos - 1.0
    phi = np.pi * (2.0 * xi_phi - 1.0)
    st = np.sqrt(np.maximum(1.0 - ct * ct, 0.0))
    return np.stack([st * np.cos(phi), st * np.sin(phi), ct], axis=1)


def cone(sin2_max, xi_s2, xi_phi):
    """Directions about +z uniform in projected solid angle inside the cone sin^2 theta <=
    sin2_max (pq_cone: sin^2 theta, then phi)."""
    s2 = sin2_max * xi_s2
    phi = np.pi * (2.0 * xi_phi - 1.0)
    st = np.sqrt(s2)
    return np.stack([st * np.cos(phi), st * np.sin(phi), np.sqrt(1.0 - s2)], axis=1)


def draw_bin(cdf, xi):
    """pq_draw_bin: the first wavelength bin whose CDF (float32, as the kernel reads it) reaches xi."""
    return np.minimum(np.searchsorted(np.asarray(cdf, dtype=np.float64), xi, side="left"), len(cdf) - 1)


class ReferenceBackend:
    name = "numpy"
    device = "CPU (NumPy reference)"
    default_batch = 10_000
    min_batch = 2_000

    def prepare(self, plan: KernelPlan) -> "ReferenceRunner":
        return ReferenceRunner(plan)

    def rng_stream(self, seed: int, photon_ids, count: int, as_uniform: bool = False) -> np.ndarray:
        """First ``count`` words (or uniforms) of each photon's stream."""
        streams = PhotonStreams(seed, np.asarray(photon_ids, dtype=np.uint64))
        everyone = np.arange(len(streams.drawn))
        draw = streams.uniform if as_uniform else streams.words
        return np.stack([draw(everyone) for _ in range(count)], axis=1)


class Photons:
    """pq_photon for every photon of a launch: position p, direction u, voxel v (each (n, 3)),
    weight w, time t (ns), remaining scattering path s, label and wavelength bin."""

    def __init__(self, n: int, bin_: int):
        self.p = np.zeros((n, 3))
        self.u = np.zeros((n, 3))
        self.v = np.zeros((n, 3), dtype=np.int64)
        self.w = np.ones(n)
        self.t = np.zeros(n)
        self.s = np.zeros(n)
        self.label = np.zeros(n, dtype=np.int64)
        self.bin = np.full(n, bin_, dtype=np.int64)


class VoxelAcc:
    """pq_voxel_acc for every photon: the voxel it is in, the start of its fluence volume (its
    bin's band), its fixed-point weight at entry, the weighted track length since, and the
    voxel's absorption (total and per species)."""

    def __init__(self, n: int, n_species: int):
        self.flat = np.zeros(n, dtype=np.int64)
        self.off_fluence = np.zeros(n, dtype=np.int64)
        self.fix_entry = np.zeros(n, dtype=np.int64)
        self.track = np.zeros(n)
        self.mua = np.zeros(n)
        self.mua_sp = np.zeros((n_species, n))


class ReferenceRunner:
    def __init__(self, plan: KernelPlan):
        self.plan = plan
        b = plan.buffers
        self.fp = fp = b["fp"].astype(np.float64)
        self.ip = ip = b["ip"]
        self.d = fp[[FP["DX"], FP["DY"], FP["DZ"]]]
        self.nv = np.array(plan.shape, dtype=np.int64)
        self.extent = self.nv * self.d
        self.labels = b["labels"].astype(np.int64)
        self.n_bins = int(ip[IP["NBIN"]])
        self.optics = b["optics"].astype(np.float64).reshape(self.n_bins, -1, 4)
        self.bc = np.array([plan.switches[BC_SWITCHES[f]] for f in FACES])
        self.n_species = plan.switches["PQ_NSPECIES"]
        if self.n_species:
            self.species_conc = b["species_conc"].reshape(self.n_species, -1).astype(np.float64)
            self.species_mua = b["species_mua"].reshape(self.n_species, self.n_bins).astype(np.float64)
        self.scalar = plan.layout.off_scalar

    # --- tallies and trace -----------------------------------------------------------------
    def _add(self, index, values, who):
        """Add int64 ``values`` of photons ``who`` to tally entries ``index`` (one slot for all,
        or one index per value), in the tally of each photon's own launch."""
        if self.n_launches == 1:
            if np.ndim(index) == 0:
                self.tally[index] += int(np.sum(values))
            else:
                np.add.at(self.tally, index, values)
        else:
            np.add.at(self.tally, self.base[who] + index, values)

    def _add_scalar(self, slot: str, values, who):
        self._add(self.scalar + SCALAR_SLOTS[slot], values, who)

    def _count(self, slot: str, who):
        """Add the number of photons ``who`` of each launch to scalar ``slot``."""
        index = self.scalar + SCALAR_SLOTS[slot]
        if self.n_launches == 1:
            self.tally[index] += len(who)
        else:
            self.tally[self.first_slots + index] += np.bincount(self.owner[who], minlength=self.n_launches)

    def _trace(self, ph, idx, event):
        if self.trace is None or len(idx) == 0:
            return
        idx = idx[self.trace_slot[idx] >= 0]
        idx = idx[self.trace_count[idx] < self.plan.trace_len]
        if len(idx) == 0:
            return
        rec = np.concatenate([ph.p[idx], ph.u[idx], ph.w[idx, None],
                              np.full((len(idx), 1), float(event))], axis=1)
        self.trace[self.trace_slot[idx], self.trace_count[idx]] = rec
        self.trace_count[idx] += 1

    def _flat(self, v):
        return (v[:, 0] * self.nv[1] + v[:, 1]) * self.nv[2] + v[:, 2]

    # --- one launch (the kernel's pq_transport + pq_photon_run) ----------------------------
    def groups(self, launches: list) -> list:
        """Consecutive launches together up to GROUP_PHOTONS photons and GROUP_TALLY_BYTES of
        tallies (one launch alone when traced)."""
        most = 1 if self.plan.switches["PQ_TRACE"] else \
            max(1, GROUP_TALLY_BYTES // (8 * self.plan.layout.size))
        out = []
        for launch in launches:
            if not out or len(out[-1]) >= most or sum(n for _, n in out[-1]) + launch[1] > GROUP_PHOTONS:
                out.append([])
            out[-1].append(launch)
        return out

    def launch(self, first: int, n: int) -> BatchOutput:
        return self.launch_many([(first, n)])[0]

    def launch_many(self, launches) -> list[BatchOutput]:
        """Several launches ((first, n) each) transported together, each with its own tallies:
        vectorised over all their photons, so the few long-lived photons at the end of a launch
        cost one tail per call instead of one per launch. The result equals separate launches
        (each photon's random stream is keyed by its index; tallies are integer sums)."""
        plan = self.plan
        size = plan.layout.size
        self.n_launches = len(launches)
        counts = np.array([n for _, n in launches], dtype=np.int64)
        ids = np.concatenate([np.uint64(f) + np.arange(n, dtype=np.uint64) for f, n in launches])
        n = len(ids)
        self.owner = np.repeat(np.arange(self.n_launches), counts)
        self.base = self.owner * size
        self.first_slots = np.arange(self.n_launches) * size
        self.tally = np.zeros(self.n_launches * size, dtype=np.int64)
        rng = PhotonStreams(plan.seed, ids, stream=int(self.ip[IP["STREAM"]]))
        self.records = []
        self.trace = None
        if plan.switches["PQ_TRACE"]:
            if self.n_launches > 1:
                raise ValueError("launch_many: a traced simulation runs one launch at a time")
            self.trace = np.full((len(plan.trace_ids), plan.trace_len, len(TRACE_FIELDS)), np.nan)
            slot = {int(t): i for i, t in enumerate(plan.trace_ids)}
            self.trace_slot = np.array([slot.get(int(i), -1) for i in ids], dtype=np.int64)
            self.trace_count = np.zeros(n, dtype=np.int64)
        ph = Photons(n, int(self.ip[IP["SRC_BIN"]]))
        everyone = np.arange(n)
        self.launch_photons(ph, everyone, rng)
        inside = self.enter(ph, everyone)
        self.propagate(ph, inside, rng)
        rows = np.concatenate(self.records) if self.records else np.zeros((0, len(RECORD_FIELDS) + 1))
        tallies = self.tally.reshape(self.n_launches, size)
        return [BatchOutput(tallies[k], self.trace, rows[rows[:, 0] == k, 1:][:plan.record_capacity])
                for k in range(self.n_launches)]

    def launch_photons(self, ph: Photons, idx, rng):
        """pq_launch: position and direction from the source (draws as listed per source type)."""
        fp, kind = self.fp, self.plan.switches["PQ_SOURCE"]
        ph.p[idx] = fp[FP["SRC_POS"]:FP["SRC_POS"] + 3]
        ph.u[idx] = fp[FP["SRC_DIR"]:FP["SRC_DIR"] + 3]
        e1 = fp[FP["SRC_E1"]:FP["SRC_E1"] + 3]
        e2 = fp[FP["SRC_E2"]:FP["SRC_E2"] + 3]
        if kind in (SOURCE_CODES["gaussian"], SOURCE_CODES["disk"]):
            xi = rng.uniform(idx)                                        # draw: radius
            phi = np.pi * (2 * rng.uniform(idx) - 1)                     # draw: azimuth
            size = fp[FP["SRC_SIZE"]]
            r = size * (np.sqrt(-0.5 * np.log(xi)) if kind == SOURCE_CODES["gaussian"] else np.sqrt(xi))
            ph.p[idx] += (r * np.cos(phi))[:, None] * e1 + (r * np.sin(phi))[:, None] * e2
        elif kind in (SOURCE_CODES["rectangle"], SOURCE_CODES["camera"]):
            xa = rng.uniform(idx)                                        # draw: along edge 1
            xb = rng.uniform(idx)                                        # draw: along edge 2
            ph.p[idx] += xa[:, None] * e1 + xb[:, None] * e2
            if kind == SOURCE_CODES["camera"]:
                xi_s2 = rng.uniform(idx)                                 # draw: sin^2 theta
                xi_phi = rng.uniform(idx)                                # draw: phi
                ph.u[idx] = cone(fp[FP["SRC_SIN2"]], xi_s2, xi_phi)
                cdf = self.plan.buffers["em_f32"][:self.n_bins]
                ph.bin[idx] = draw_bin(cdf, rng.uniform(idx))           # draw: wavelength bin
        elif kind == SOURCE_CODES["isotropic"]:
            ph.u[idx] = isotropic(rng.uniform(idx), rng.uniform(idx))   # draw: cos theta, phi
        elif kind == SOURCE_CODES["emission"]:
            self._launch_emission(ph, idx, rng)

    def _launch_emission(self, ph: Photons, idx, rng):
        """Voxel from the alias table, uniform point inside it, isotropic direction, wavelength bin."""
        b = self.plan.buffers
        m = int(self.ip[IP["EM_COUNT"]])
        voxels, alias = b["em_u32"][:m], b["em_u32"][m:2 * m]
        accept, cdf = b["em_f32"][:m], b["em_f32"][m:]
        k = np.minimum((rng.uniform(idx) * m).astype(np.int64), m - 1)   # draw: table entry
        keep = rng.uniform(idx) < accept[k]                              # draw: accept or alias
        flat = voxels[np.where(keep, k, alias[k])].astype(np.int64)
        v = np.stack([flat // (self.nv[1] * self.nv[2]), (flat // self.nv[2]) % self.nv[1],
                      flat % self.nv[2]], axis=1)
        offset = np.stack([rng.uniform(idx) for _ in range(3)], axis=1)  # draw: x, y, z in voxel
        ph.v[idx] = v
        ph.p[idx] = (v + offset) * self.d
        ph.u[idx] = isotropic(rng.uniform(idx), rng.uniform(idx))       # draw: cos theta, phi
        ph.bin[idx] = draw_bin(cdf, rng.uniform(idx))                   # draw: wavelength bin

    def enter(self, ph: Photons, idx) -> np.ndarray:
        """pq_enter: bring launched photons into tissue; returns those that reach it."""
        p, u, v = ph.p, ph.u, ph.v
        n = len(idx)
        alive = np.ones(n, dtype=bool)
        axis = np.full(n, 2)
        from_ambient = np.zeros(n, dtype=bool)
        emission = self.plan.switches["PQ_SOURCE"] == SOURCE_CODES["emission"]
        # a start outside the box or on its surface moves to the entry point
        outside = ~np.all((p[idx] > 0) & (p[idx] < self.extent), axis=1) & (not emission)
        o = np.flatnonzero(outside)
        if len(o):
            po, uo = p[idx[o]], u[idx[o]]
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
            self._add_scalar("MISSED", fix_weight(ph.w[idx[o[miss]]]), idx[o[miss]])
            self._trace(ph, idx[o[miss]], EVENTS["MISSED"])
            alive[o[miss]] = False
            hit, ax, t_in = o[~miss], ax[~miss], t_in[~miss]
            p[idx[hit]] += np.maximum(t_in, 0)[:, None] * u[idx[hit]]
            p[idx[hit], ax] = np.where(u[idx[hit], ax] > 0, 0.0, self.extent[ax])
            axis[hit] = ax
            from_ambient[hit] = True
        if not emission:  # an emission photon already knows its voxel
            f = p[idx] / self.d
            vi = np.floor(f).astype(np.int64)
            vi -= ((vi == f) & (u[idx] < 0)).astype(np.int64)           # on a face: the voxel ahead
            v[idx] = np.clip(vi, 0, self.nv - 1)
        live = idx[alive]
        ph.label[live] = self.labels[self._flat(v[live])]
        # ambient voxels are crossed without interaction until tissue is reached
        while True:
            amb = np.flatnonzero(alive & (ph.label[idx] == 0))
            if not len(amb):
                break
            a = idx[amb]
            from_ambient[amb] = True
            dist, ax = self.to_boundary(ph, a)
            axis[amb] = ax
            p[a] += dist[:, None] * u[a]
            step = np.where(u[a, ax] > 0, 1, -1)
            p[a, ax] = (v[a, ax] + (step > 0)) * self.d[ax]
            v[a, ax] += step
            gone = (v[a, ax] < 0) | (v[a, ax] >= self.nv[ax])
            self._add_scalar("MISSED", fix_weight(ph.w[a[gone]]), a[gone])
            self._trace(ph, a[gone], EVENTS["MISSED"])
            alive[amb[gone]] = False
            ph.label[a[~gone]] = self.labels[self._flat(v[a[~gone]])]
        if self.plan.switches["PQ_SPECULAR"]:
            n_amb = self.fp[FP["N_AMBIENT"]]
            e = np.flatnonzero(alive & from_ambient)
            n_in = self.optics[ph.bin[idx[e]], ph.label[idx[e]], 3]
            e, n_in = e[n_in != n_amb], n_in[n_in != n_amb]
            ie, ax = idx[e], axis[e]
            r, cos_t = fresnel(n_amb, n_in, np.abs(u[ie, ax]))
            w_in = ph.w[ie] * (1 - r)
            self._add_scalar("SPECULAR", fix_weight(ph.w[ie]) - fix_weight(w_in), ie)
            ph.w[ie] = w_in
            total = r >= 1
            self._trace(ph, ie[total], EVENTS["MISSED"])
            alive[e[total]] = False
            keep = ~total
            u[ie[keep]] = refract(u[ie[keep]], ax[keep], n_amb / n_in[keep], cos_t[keep])
        self._trace(ph, idx[alive], EVENTS["LAUNCH"])
        return idx[alive]

    def to_boundary(self, ph: Photons, idx):
        """pq_to_boundary: distance to the next voxel face along u and its axis (first on ties)."""
        p, u, v = ph.p[idx], ph.u[idx], ph.v[idx]
        with np.errstate(divide="ignore", invalid="ignore"):
            plane = (v + (u > 0)) * self.d
            dist = np.where(u != 0, np.maximum((plane - p) / u, 0.0), np.inf)
        axis = np.argmin(dist, axis=1)
        return dist[np.arange(len(axis)), axis], axis

    def voxel_enter(self, acc: VoxelAcc, ph: Photons, idx, fix_w):
        """pq_voxel_enter: the photons ``idx`` enter their voxel with fixed-point weight fix_w."""
        flat = self._flat(ph.v[idx])
        acc.flat[idx] = flat
        acc.fix_entry[idx] = fix_w
        acc.track[idx] = 0.0
        acc.mua[idx] = self.optics[ph.bin[idx], ph.label[idx], 0]
        if self.n_species:
            acc.mua_sp[:, idx] = self.species_conc[:, flat] * self.species_mua[:, ph.bin[idx]]
            acc.mua[idx] += acc.mua_sp[:, idx].sum(axis=0)

    def settle(self, acc: VoxelAcc, idx, fix_now):
        """pq_settle: absorbed weight since entry, each species' share of it, the fluence track."""
        layout = self.plan.layout
        flat = acc.flat[idx]
        deposit = acc.fix_entry[idx] - fix_now
        self._add(flat, deposit, idx)
        for sp in range(self.n_species):
            mua_sp, mua = acc.mua_sp[sp, idx], acc.mua[idx]
            has = mua_sp > 0
            self._add(layout.off_species + sp * layout.n_voxels + flat[has],
                      np.rint(deposit[has] * (mua_sp[has] / mua[has])).astype(np.int64), idx[has])
        if self.plan.switches["PQ_FLUENCE"]:
            self._add(acc.off_fluence[idx] + flat, np.rint(acc.track[idx] * FIX_TRACK).astype(np.int64), idx)

    def end(self, acc: VoxelAcc, ph: Photons, idx, slot: int | None):
        """The end of pq_propagate: settle the last voxel; the final weight goes to ``slot``."""
        fix_now = fix_weight(ph.w[idx])
        self.settle(acc, idx, fix_now)
        if slot is not None:
            self._add(self.scalar + slot, fix_now, idx)

    def propagate(self, ph: Photons, act, rng):
        """pq_propagate: transport until escape, roulette loss, the gate or a guard."""
        fp = self.fp
        t_gate, max_steps = fp[FP["T_GATE"]], int(self.ip[IP["MAX_STEPS"]])
        gate_slot = int(self.ip[IP["GATE_SLOT"]])
        stopped = SCALAR_SLOTS["STOPPED"]
        n = len(ph.w)
        acc = VoxelAcc(n, self.n_species)
        band = self.plan.buffers["fluence_band"].astype(np.int64)
        acc.off_fluence[act] = self.plan.layout.off_fluence + band[ph.bin[act]] * self.plan.layout.n_voxels
        self.voxel_enter(acc, ph, act, fix_weight(ph.w[act]))
        steps = np.zeros(n, dtype=np.int64)
        gain = np.zeros(n)
        while len(act):
            need = act[ph.s[act] <= 0]
            ph.s[need] = -np.log(rng.uniform(need))                      # draw: free path
            props = self.optics[ph.bin[act], ph.label[act]]
            mus, g, n_here = props[:, 1], props[:, 2], props[:, 3]
            dist, axis = self.to_boundary(ph, act)
            event = np.full(len(act), EVENTS["CROSS"])
            with np.errstate(divide="ignore", invalid="ignore"):
                scat = (mus > 0) & (ph.s[act] <= dist * mus)
                dist = np.where(scat, ph.s[act] / mus, dist)
            event[scat] = EVENTS["SCATTER"]
            d_gate = (t_gate - ph.t[act]) * C0_MM_PER_NS / n_here
            gated = d_gate <= dist
            dist = np.where(gated, np.maximum(d_gate, 0), dist)
            event[gated] = EVENTS["GATE"]
            ph.p[act] += dist[:, None] * ph.u[act]
            ph.t[act] += dist * n_here / C0_MM_PER_NS
            mua = acc.mua[act]
            w_new = ph.w[act] * np.exp(-mua * dist)
            if self.plan.switches["PQ_FLUENCE"]:  # track length: integral of the weight along the step
                with np.errstate(divide="ignore", invalid="ignore"):
                    acc.track[act] += np.where(mua > 0, (ph.w[act] - w_new) / mua, ph.w[act] * dist)
            ph.w[act] = w_new
            ph.s[act] = np.where(scat, 0.0, ph.s[act] - dist * mus)
            steps[act] += 1
            self._count("STEPS", act)

            gate = act[event == EVENTS["GATE"]]
            self._trace(ph, gate, EVENTS["GATE"] if gate_slot == SCALAR_SLOTS["ALIVE"] else EVENTS["STOPPED"])
            self.end(acc, ph, gate, gate_slot)
            guard = (event != EVENTS["GATE"]) & (steps[act] >= max_steps)
            self._trace(ph, act[guard], EVENTS["STOPPED"])
            self.end(acc, ph, act[guard], stopped)
            dead = [gate, act[guard]]

            sc = (event == EVENTS["SCATTER"]) & ~guard
            if sc.any():
                dead.append(self.scatter_and_roulette(ph, acc, act[sc], g[sc], gain, rng))
            cr = (event == EVENTS["CROSS"]) & ~guard
            if cr.any():
                dead.append(self.cross(ph, acc, act[cr], axis[cr], n_here[cr], rng))
            act = np.setdiff1d(act, np.concatenate(dead), assume_unique=True)

    def scatter_and_roulette(self, ph: Photons, acc: VoxelAcc, idx, g, gain, rng) -> np.ndarray:
        """The scattering event of pq_propagate: deflection, then Russian roulette below the
        threshold (net weight tallied). Returns the photons that ended."""
        fp = self.fp
        xi_cos = rng.uniform(idx)                                        # draw: cos theta
        xi_phi = rng.uniform(idx)                                        # draw: phi
        ph.u[idx] = scatter(ph.u[idx], g, xi_cos, xi_phi)
        self._count("INTERACTIONS", idx)
        self._trace(ph, idx, EVENTS["SCATTER"])
        low = idx[ph.w[idx] < fp[FP["ROULETTE_W"]]]
        if not len(low):
            return low
        m = fp[FP["ROULETTE_M"]]
        survive = rng.uniform(low) * m < 1.0                             # draw: roulette
        up, lost = low[survive], low[~survive]
        fix_w, w_up = fix_weight(ph.w[up]), ph.w[up] * m
        fix_up = fix_weight(w_up)
        self._add_scalar("ROULETTE", fix_up - fix_w, up)
        acc.fix_entry[up] += fix_up - fix_w       # absorbed so far stays booked
        gain[up] += w_up - ph.w[up]
        ph.w[up] = w_up
        over = up[gain[up] > MAX_ROULETTE_GAIN]
        self._trace(ph, over, EVENTS["STOPPED"])
        self.end(acc, ph, over, SCALAR_SLOTS["STOPPED"])
        fix_lost = fix_weight(ph.w[lost])
        self._add_scalar("ROULETTE", -fix_lost, lost)
        acc.fix_entry[lost] -= fix_lost
        ph.w[lost] = 0.0
        self._trace(ph, lost, EVENTS["ROULETTE"])
        self.end(acc, ph, lost, None)
        return np.concatenate([over, lost])

    def cross(self, ph: Photons, acc: VoxelAcc, c, ax, n, rng) -> np.ndarray:
        """The face crossing of pq_propagate for photons ``c`` on a face of their voxel normal to
        ``ax``: mirror, cyclic wrap, Fresnel reflection or refraction, escape (scored into the exit
        map) or entry into the next voxel. Returns the photons that left."""
        p, u, v = ph.p, ph.u, ph.v
        step = np.where(u[c, ax] > 0, 1, -1)
        p[c, ax] = (v[c, ax] + (step > 0)) * self.d[ax]
        nxt = v[c, ax] + step
        outside = (nxt < 0) | (nxt >= self.nv[ax])
        face = 2 * ax + (step > 0)
        bc = np.where(outside, self.bc[face], ESCAPE)

        mirror = outside & (bc == MIRROR)
        u[c[mirror], ax[mirror]] *= -1
        self._trace(ph, c[mirror], EVENTS["REFLECT"])
        cyclic = outside & (bc == CYCLIC)
        nxt[cyclic] = np.where(step[cyclic] > 0, 0, self.nv[ax[cyclic]] - 1)
        outside &= ~cyclic

        go = ~mirror
        c, ax, n, step, nxt, outside, face = (x[go] for x in (c, ax, n, step, nxt, outside, face))
        vn = v[c].copy()
        vn[np.arange(len(c)), ax] = nxt
        next_label = np.where(outside, 0, self.labels[self._flat(np.where(outside[:, None], 0, vn))])
        n_next = np.where(next_label == 0, self.fp[FP["N_AMBIENT"]],
                          self.optics[ph.bin[c], next_label, 3])

        reflect = np.zeros(len(c), dtype=bool)
        mism = np.flatnonzero(n_next != n)
        if len(mism):
            r, cos_t = fresnel(n[mism], n_next[mism], np.abs(u[c[mism], ax[mism]]))
            reflect[mism] = rng.uniform(c[mism]) < r                     # draw: reflect or refract
            refl, thru = mism[reflect[mism]], mism[~reflect[mism]]
            u[c[refl], ax[refl]] *= -1
            self._trace(ph, c[refl], EVENTS["REFLECT"])
            u[c[thru]] = refract(u[c[thru]], ax[thru], n[thru] / n_next[thru], cos_t[~reflect[mism]])

        leave = ~reflect & (next_label == 0)
        out = c[leave]
        if self.plan.switches["PQ_EXIT_MAP"]:
            self.score_exit(ph, out[outside[leave] & (face[leave] == 4)])
        self._trace(ph, out, EVENTS["ESCAPE"])
        slots = np.where(outside[leave], SCALAR_SLOTS["ESCAPE"] + face[leave], SCALAR_SLOTS["ESCAPE_AMBIENT"])
        fix_out = fix_weight(ph.w[out])
        self.settle(acc, out, fix_out)
        self._add(self.scalar + slots, fix_out, out)

        move = ~reflect & (next_label != 0)
        mv, axm, nm, stepm = c[move], ax[move], nxt[move], step[move]
        fix_w = fix_weight(ph.w[mv])
        self.settle(acc, mv, fix_w)
        wrapped = nm != v[mv, axm] + stepm
        p[mv[wrapped], axm[wrapped]] = np.where(stepm[wrapped] > 0, 0.0, self.extent[axm[wrapped]])
        v[mv, axm] = nm
        ph.label[mv] = next_label[move]
        self.voxel_enter(acc, ph, mv, fix_w)
        self._trace(ph, mv, EVENTS["CROSS"])
        return out

    def score_exit(self, ph: Photons, top):
        """pq_score_exit: photons leaving through z = 0 inside the acceptance cone, into the exit
        map (weighted by their bin's detection efficiency) and the bounded record."""
        fp, ip, b = self.fp, self.ip, self.plan.buffers
        top = top[-ph.u[top, 2] >= fp[FP["MAP_COS"]]]
        px = np.floor((ph.p[top, 0] - fp[FP["MAP_X0"]]) / fp[FP["MAP_PX"]]).astype(np.int64)
        py = np.floor((ph.p[top, 1] - fp[FP["MAP_Y0"]]) / fp[FP["MAP_PY"]]).astype(np.int64)
        inmap = (px >= 0) & (px < ip[IP["MAP_NX"]]) & (py >= 0) & (py < ip[IP["MAP_NY"]])
        scored = top[inmap]
        self._add(ip[IP["OFF_MAP"]] + px[inmap] * ip[IP["MAP_NY"]] + py[inmap],
                  fix_weight(ph.w[scored] * b["bin_eff"][ph.bin[scored]]), scored)
        self._count("DETECTED", scored)
        if self.plan.record_capacity:        # each row tagged with its launch
            self.records.append(np.column_stack([
                self.owner[scored], ph.p[scored, 0], ph.p[scored, 1], ph.u[scored], ph.bin[scored],
                ph.w[scored], ph.t[scored]]))
