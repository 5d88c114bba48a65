"""The tissue-optics figure renders to PNG (skipped without matplotlib)."""

import pytest

pytest.importorskip("matplotlib")


def test_plot_tissues_writes_png(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from photonqd.optics import plot_tissues

    path = tmp_path / "tissues.png"
    fig = plot_tissues(["dermis", "whole_blood"], path=path)
    assert path.stat().st_size > 10_000
    assert len(fig.axes) == 2
