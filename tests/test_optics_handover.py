"""Hand-over table for the transport engine."""

import json

import numpy as np
import pytest

from photonqd.optics import Intralipid, Provenance, build_optics_table, qd_preset, tissue_preset


def test_table_layout_and_provenance():
    wl = np.array([808.0, 1000.0, 1300.0, 1550.0])
    t = build_optics_table({1: tissue_preset("dermis"), 2: tissue_preset("subcutaneous_fat"),
                            3: Intralipid.from_percent(1.0)},
                           wl, [qd_preset("pbs_cds_1300"), qd_preset("cdtese_zns_800")], n_ambient=1.33)
    assert t.table.shape == (4, 4, 4) and t.table.dtype == np.float32
    assert t.qd_absorption.shape == (2, 4) and t.qd_absorption.dtype == np.float32
    np.testing.assert_array_equal(t.table[:, 0, :3], 0.0)
    np.testing.assert_allclose(t.table[:, 0, 3], 1.33)
    dermis = tissue_preset("dermis").properties(wl)
    np.testing.assert_allclose(t.table[:, 1, 0], dermis.mua, rtol=1e-6)
    np.testing.assert_allclose(t.table[:, 1, 1], dermis.mus, rtol=1e-6)
    np.testing.assert_allclose(t.qd_absorption[0], qd_preset("pbs_cds_1300").mua_per_uM(wl, Provenance()), rtol=1e-6)
    d = t.provenance.to_dict()
    json.dumps(d)  # plain types only
    assert "dermis:mus_reduced" in d["extrapolated_quantities"]
    assert "subcutaneous_fat:mua_lipid" in d["extrapolated_quantities"]
    assert Provenance.from_dict(d).to_dict() == d
    assert t.label_names == ("ambient", "dermis", "subcutaneous_fat", "intralipid")


@pytest.mark.parametrize("tissues,match", [({0: "x"}, "label 0"), ({1: None, 3: None}, "without gaps")])
def test_bad_labels_raise(tissues, match):
    with pytest.raises(ValueError, match=match):
        build_optics_table(tissues, [800.0])


def test_bad_wavelengths_and_ambient_raise():
    with pytest.raises(ValueError, match="wavelengths_nm"):
        build_optics_table({1: tissue_preset("dermis")}, [800.0, -1.0])
    with pytest.raises(ValueError, match="n_ambient"):
        build_optics_table({1: tissue_preset("dermis")}, [800.0], n_ambient=0.5)
