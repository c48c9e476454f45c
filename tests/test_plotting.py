"""Tests of the effect-surface plots (bayes_wake.plotting)."""

from __future__ import annotations

import itertools

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.collections import QuadMesh  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from bayes_wake.errors import SettingsError  # noqa: E402
from bayes_wake.plotting import (  # noqa: E402
    HATCH_GID,
    NA_GID,
    NULL_TEXT_GID,
    VALUE_GID,
    WARNING_GID,
    SurfaceStyle,
    plot_effect_surface,
    plot_surfaces_side_by_side,
    save_figure,
)

WINDOWS = np.arange(10, 61, 10)  # days
RADII = np.arange(3, 16, 3)  # km


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def ols_surface(windows=WINDOWS, radii=RADII, seed=0) -> xr.Dataset:
    """An OLS-like table: estimates growing with the window, two NA cells, some p > 0.05."""
    rng = np.random.default_rng(seed)
    w, r = np.meshgrid(windows, radii, indexing="ij")
    estimate = 0.03 * w - 0.5 + 0.02 * r + rng.normal(0, 0.1, w.shape)
    pvalue = np.where(np.abs(estimate) > 0.6, 0.01, 0.4)
    if estimate.size > 4:
        estimate[0, -1] = np.nan
        pvalue[0, -1] = np.nan
        estimate[1, 0] = np.nan
        pvalue[1, 0] = np.nan
    return xr.Dataset(
        {"estimate": (("window", "radius"), estimate), "pvalue": (("window", "radius"), pvalue)},
        coords={"window": windows, "radius": radii},
    )


def posterior_surface(windows=WINDOWS, radii=RADII) -> xr.Dataset:
    w, r = np.meshgrid(windows, radii, indexing="ij")
    mean = 0.025 * w - 0.4
    half = 0.3 + 0.01 * r
    ds = xr.Dataset(
        {
            "mean": (("window", "radius"), mean),
            "ci_lower": (("window", "radius"), mean - half),
            "ci_upper": (("window", "radius"), mean + half),
        },
        coords={"window": windows, "radius": radii},
    )
    ds["ci_lower"].attrs["ci_prob"] = 0.95
    return ds


def hatched(ax) -> list[tuple[int, int]]:
    """(window index, radius index) of every hatched cell."""
    collections = [c for c in ax.collections if c.get_gid() == HATCH_GID]
    assert len(collections) <= 1
    cells = []
    for collection in collections:
        assert collection.get_hatch() == "///"
        for path in collection.get_paths():
            x, y = path.vertices.mean(axis=0)
            cells.append((round(y), round(x)))
    return sorted(cells)


def texts(ax, gid) -> list[Text]:
    return [t for t in ax.texts if t.get_gid() == gid]


def mesh_of(ax) -> QuadMesh:
    (mesh,) = [c for c in ax.collections if isinstance(c, QuadMesh)]
    return mesh


def all_axes(fig) -> list:
    """The figure's axes and their insets (a colourbar placed beside its panel)."""
    return [a for ax in fig.axes for a in (ax, *ax.child_axes)]


def legend_texts(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def expected_hatched(ds: xr.Dataset, alpha=0.05) -> int:
    est = ds["estimate"].values
    p = ds["pvalue"].values
    return int((np.isfinite(est) & ~(p <= alpha)).sum())


# ------------------------------------------------------------------------------------------
# plot_effect_surface


def test_hatches_exactly_the_non_significant_cells():
    ds = ols_surface()
    fig, ax = plot_effect_surface(ds)
    n = expected_hatched(ds)
    assert 0 < n < ds["estimate"].size - 2
    assert len(hatched(ax)) == n
    # Each hatch sits on a non-significant cell with a value (cell centres are grid indices).
    est, p = ds["estimate"].values, ds["pvalue"].values
    for i, j in hatched(ax):
        assert np.isfinite(est[i, j]) and not p[i, j] <= 0.05
    assert any("not significant (p > 0.05)" == t for t in legend_texts(ax))


def test_alpha_moves_the_threshold():
    ds = ols_surface()
    ds["pvalue"][:] = 0.08
    _, ax = plot_effect_surface(ds, alpha=0.1)
    assert hatched(ax) == []
    _, ax = plot_effect_surface(ds, alpha=0.05)
    assert len(hatched(ax)) == int(np.isfinite(ds["estimate"].values).sum())


def test_colour_limits_are_symmetric_around_zero():
    ds = ols_surface()
    _, ax = plot_effect_surface(ds)
    norm = mesh_of(ax).norm
    largest = np.nanmax(np.abs(ds["estimate"].values))
    assert norm.vmin == pytest.approx(-largest)
    assert norm.vmax == pytest.approx(largest)
    assert norm(0.0) == pytest.approx(0.5)


def test_given_limits_keep_zero_at_the_centre():
    _, ax = plot_effect_surface(ols_surface(), style=SurfaceStyle(vmin=-0.5, vmax=2.0))
    norm = mesh_of(ax).norm
    assert isinstance(norm, mcolors.TwoSlopeNorm)
    assert (norm.vmin, norm.vcenter, norm.vmax) == (-0.5, 0.0, 2.0)
    _, ax = plot_effect_surface(ols_surface(), style=SurfaceStyle(vmax=3.0))
    assert (mesh_of(ax).norm.vmin, mesh_of(ax).norm.vmax) == (-3.0, 3.0)
    with pytest.raises(SettingsError, match="straddle 0"):
        plot_effect_surface(ols_surface(), style=SurfaceStyle(vmin=0.5, vmax=2.0))


def test_nan_cells_are_grey_and_labelled_na():
    ds = ols_surface()
    _, ax = plot_effect_surface(ds)
    na = texts(ax, NA_GID)
    assert len(na) == 2
    assert {t.get_text() for t in na} == {"NA"}
    assert {t.get_position() for t in na} == {(4, 0), (0, 1)}  # (radius index, window index)
    mesh = mesh_of(ax)
    assert mcolors.to_hex(mesh.cmap.get_bad()) == "#d9d9d9"
    assert np.ma.getmaskarray(mesh.get_array()).sum() == 2
    assert "NA (no estimate)" in legend_texts(ax)
    # NA labels stay even without annotation, and an NA cell is never hatched.
    _, ax = plot_effect_surface(ds, style=SurfaceStyle(annotate=False))
    assert len(texts(ax, NA_GID)) == 2 and texts(ax, VALUE_GID) == []


def test_values_are_written_with_two_decimals_in_a_readable_colour():
    ds = ols_surface()
    ds["estimate"][-1, -1] = 2.0  # the darkest red
    ds["estimate"][-1, 0] = 0.001  # near white
    _, ax = plot_effect_surface(ds)
    labels = {t.get_position(): t for t in texts(ax, VALUE_GID)}
    assert len(labels) == int(np.isfinite(ds["estimate"].values).sum())
    dark = labels[(4, 5)]
    light = labels[(0, 5)]
    assert dark.get_text() == "2.00" and mcolors.to_hex(dark.get_color()) == "#ffffff"
    assert light.get_text() == "0.00" and mcolors.to_hex(light.get_color()) == "#000000"
    negative = [t.get_text() for t in labels.values() if t.get_text().startswith("\u2212")]
    assert negative, "negative values are written with a minus sign"


def test_axis_labels_ticks_and_colourbar():
    ds = ols_surface()
    fig, ax = plot_effect_surface(ds, title="Violence against civilians", t_unit="hours")
    assert ax.get_xlabel() == "Spatial window (km)"
    assert ax.get_ylabel() == "Temporal window (hours)"
    assert ax.get_title() == "Violence against civilians"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["3", "6", "9", "12", "15"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["10", "20", "30", "40", "50", "60"]
    np.testing.assert_array_equal(ax.get_xticks(), np.arange(5))
    colourbar_labels = [a.get_ylabel() for a in all_axes(fig) if a is not ax]
    assert colourbar_labels == ["effect (events per wake)"]


def test_dims_in_either_order_and_unsorted_coordinates_give_the_same_picture():
    ds = ols_surface()
    shuffled = ds.transpose("radius", "window").isel(window=[3, 0, 5, 1, 2, 4])
    _, ax1 = plot_effect_surface(ds)
    _, ax2 = plot_effect_surface(shuffled)
    first = sorted((t.get_position(), t.get_text()) for t in ax1.texts)
    second = sorted((t.get_position(), t.get_text()) for t in ax2.texts)
    assert first == second
    assert hatched(ax1) == hatched(ax2)


@pytest.mark.parametrize(
    "select", [{"window": [2]}, {"radius": [1]}, {"window": [0], "radius": [2]}]
)
def test_single_row_or_column_grid(select):
    ds = ols_surface().isel(select)
    fig, ax = plot_effect_surface(ds, title="one slice")
    assert len(hatched(ax)) == expected_hatched(ds)
    assert len(texts(ax, VALUE_GID)) == int(np.isfinite(ds["estimate"].values).sum())
    assert ax.get_xlim() == (-0.5, ds.sizes["radius"] - 0.5)
    assert ax.get_ylim() == (-0.5, ds.sizes["window"] - 0.5)
    assert_no_overlaps(fig)


def test_explicit_significance_mask_overrides_the_pvalues():
    ds = ols_surface()
    mask = xr.DataArray(
        np.zeros((ds.sizes["radius"], ds.sizes["window"]), dtype=bool),
        dims=("radius", "window"), coords={"radius": RADII, "window": WINDOWS},
    )
    mask.loc[{"radius": 9, "window": 30}] = True
    _, ax = plot_effect_surface(ds, significant=mask,
                                style=SurfaceStyle(hatch_label="n.s."))
    assert len(hatched(ax)) == int(np.isfinite(ds["estimate"].values).sum()) - 1
    assert (2, 2) not in hatched(ax)
    assert "n.s." in legend_texts(ax)
    with pytest.raises(SettingsError, match="boolean"):
        plot_effect_surface(ds, significant=mask.astype(int))
    with pytest.raises(SettingsError, match="coordinates"):
        plot_effect_surface(ds, significant=mask.assign_coords(radius=RADII + 1))


def test_interval_significance_without_pvalues():
    ds = posterior_surface()
    _, ax = plot_effect_surface(ds, value="mean")
    lo, hi = ds["ci_lower"].values, ds["ci_upper"].values
    assert len(hatched(ax)) == int(((lo <= 0) & (hi >= 0)).sum()) > 0
    assert legend_texts(ax) == ["not significant (95% interval includes 0)"]


def test_no_significance_information_means_no_hatching():
    _, ax = plot_effect_surface(ols_surface().drop_vars("pvalue"))
    assert hatched(ax) == []


def test_posterior_draws_are_summarised():
    rng = np.random.default_rng(1)
    truth = np.array([[0.0, 2.0], [-2.0, 0.1]])
    draws = truth + rng.normal(0, 0.3, (2, 200, 2, 2))
    ds = xr.Dataset(
        {"effect": (("chain", "draw", "window", "radius"), draws)},
        coords={"window": [1, 2], "radius": [5.0, 10.0]},
    )
    _, ax = plot_effect_surface(ds, value="effect")
    assert len(hatched(ax)) == 2  # the cells around 0
    written = {t.get_position(): t.get_text() for t in texts(ax, VALUE_GID)}
    assert written[(1, 0)] == f"{draws[..., 0, 1].mean():.2f}"
    assert legend_texts(ax) == ["not significant (95% interval includes 0)"]


def test_timedelta_windows_are_shown_in_t_unit():
    ds = ols_surface().assign_coords(window=(WINDOWS * np.timedelta64(1, "D")).astype("m8[ns]"))
    _, ax = plot_effect_surface(ds, t_unit="hours")
    assert [t.get_text() for t in ax.get_yticklabels()][:2] == ["240", "480"]


def test_draws_into_given_axes():
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    out_fig, out_ax = plot_effect_surface(ols_surface(), ax=axes[1])
    assert out_fig is fig and out_ax is axes[1]
    assert len(hatched(axes[1])) == expected_hatched(ols_surface())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda ds: ds.rename(estimate="beta"), "no variable 'estimate'"),
        (lambda ds: ds.rename(radius="distance"), "no dim 'radius'"),
        (lambda ds: ds.expand_dims(outcome=["a", "b"]), "select one slice"),
    ],
)
def test_unusable_surfaces_are_refused(change, message):
    with pytest.raises(SettingsError, match=message):
        plot_effect_surface(change(ols_surface()))


def test_unusable_settings_are_refused():
    with pytest.raises(SettingsError, match="t_unit"):
        plot_effect_surface(ols_surface(), t_unit="weeks")
    with pytest.raises(SettingsError, match="alpha"):
        plot_effect_surface(ols_surface(), alpha=5)


def test_length_one_extra_dims_are_dropped():
    _, ax = plot_effect_surface(ols_surface().expand_dims(outcome=["violence"]))
    assert len(hatched(ax)) == expected_hatched(ols_surface())


# ------------------------------------------------------------------------------------------
# plot_surfaces_side_by_side


def test_side_by_side_shares_one_symmetric_scale_and_one_colourbar():
    left, right = ols_surface(), posterior_surface()
    right["mean"][-1, -1] = 3.0  # the largest |value| of both is on the right
    fig, axes = plot_surfaces_side_by_side(left, right)
    assert isinstance(axes, np.ndarray) and axes.shape == (2,)
    norms = [mesh_of(ax).norm for ax in axes]
    assert norms[0] is norms[1] or (
        (norms[0].vmin, norms[0].vmax) == (norms[1].vmin, norms[1].vmax)
    )
    assert (norms[0].vmin, norms[0].vmax) == (-3.0, 3.0)
    assert len(all_axes(fig)) == 3  # two panels and one colourbar
    assert [ax.get_title() for ax in axes] == [
        "OLS (matched wake analysis)", "Bayesian posterior mean",
    ]
    assert len(hatched(axes[0])) == expected_hatched(left)
    lo, hi = right["ci_lower"].values, right["ci_upper"].values
    assert len(hatched(axes[1])) == int(((lo <= 0) & (hi >= 0)).sum())
    assert legend_texts(axes[1])[0] == "not significant (95% interval includes 0)"
    assert "not significant (p > 0.05)" in legend_texts(axes[0])
    assert_no_overlaps(fig)


def test_side_by_side_right_panel_prefers_the_interval():
    right = posterior_surface()
    right["pvalue"] = xr.zeros_like(right["mean"])  # would make every cell significant
    _, axes = plot_surfaces_side_by_side(ols_surface(), right)
    assert len(hatched(axes[1])) > 0


def test_warning_is_drawn_in_red():
    warning = "NOT CONVERGED: max R-hat 1.08, 12 divergences"
    fig, _ = plot_surfaces_side_by_side(ols_surface(), posterior_surface(), warning=warning)
    drawn = [t for t in fig.findobj(Text) if t.get_gid() == WARNING_GID]
    assert [t.get_text() for t in drawn] == [warning]
    assert mcolors.to_rgb(drawn[0].get_color())[0] > 0.6 > mcolors.to_rgb(drawn[0].get_color())[1]
    assert_no_overlaps(fig)
    fig, _ = plot_effect_surface(posterior_surface(), value="mean", warning="NOT CONVERGED")
    assert any(t.get_text() == "NOT CONVERGED" for t in fig.findobj(Text))


def outlined(ax) -> list[tuple[int, int]]:
    """(window index, radius index) of the cells outlined as filled by the right panel only."""
    from bayes_wake.plotting import FILLED_GID

    cells = []
    for collection in (c for c in ax.collections if c.get_gid() == FILLED_GID):
        assert not collection.get_hatch()  # an outline, told apart from the interval hatching
        for path in collection.get_paths():
            x, y = path.vertices[:4].mean(axis=0)
            cells.append((round(y), round(x)))
    return sorted(cells)


def test_cells_only_the_posterior_fills_are_outlined_and_explained():
    """A posterior value where OLS is NA is marked and its legend says where it comes from."""
    left, right = ols_surface(), posterior_surface()  # OLS is NA at (0, 4) and (1, 0)
    right["mean"][1, 0] = np.nan  # NA in both: nothing to explain
    fig, axes = plot_surfaces_side_by_side(left, right, filled_label="pooled: no OLS value")
    assert outlined(axes[1]) == [(0, 4)] and outlined(axes[0]) == []
    assert [t.replace("\n", " ") for t in legend_texts(axes[1])] == [
        "not significant (95% interval includes 0)", "NA (no estimate)",
        "pooled: no OLS value"]
    assert_no_overlaps(fig)
    fig, axes = plot_surfaces_side_by_side(left, right)
    assert "neighbouring windows" in " ".join(legend_texts(axes[1])).replace("\n", " ")
    _, axes = plot_surfaces_side_by_side(left, right.where(left["estimate"].notnull()))
    assert outlined(axes[1]) == [] and len(legend_texts(axes[1])) == 2


def legend_boxes(fig) -> list:
    fig.draw_without_rendering()
    return [ax.get_legend().get_window_extent() for ax in fig.axes if ax.get_legend()]


@pytest.mark.parametrize(
    ("windows", "radii"),
    [(np.arange(2, 11, 2), np.arange(2, 11, 2)), (WINDOWS, RADII), ([10], [3, 6, 9]),
     ([10], RADII)],
    ids=["5x5", "6x5", "1x3", "1x5"],
)
def test_colourbar_sits_next_to_the_panels(windows, radii):
    """The colourbar keeps close to the panels even when a legend is wider than its panel
    (R's example left a gap of 100 px at 200 dpi before the bar)."""
    windows, radii = np.asarray(windows), np.asarray(radii)
    left = ols_surface(np.r_[windows, windows[-1] + 10], radii).isel(window=slice(-1))
    right = posterior_surface(windows, radii)
    right["mean"][0, 0] = np.nan  # the right legend: hatching, NA and filled cells
    right["ci_lower"].attrs["ci_prob"] = 0.89
    fig, axes = plot_surfaces_side_by_side(
        left, right, warning="NOT CONVERGED: min bulk ESS 339 < 400",
        left_title="OLS (matched wake analysis)\nhatched: p > 0.05",
        right_title="Bayesian posterior mean (smooth_nb)\nhatched: 89% interval includes 0")
    fig.draw_without_rendering()
    (cbar,) = [a for a in all_axes(fig) if a not in axes]
    bar = cbar.get_window_extent()
    if bar.height > bar.width:  # beside the right panel
        gap = bar.x0 - axes[1].get_window_extent().x1
    else:  # below the panels, under their legends
        gap = min(ax.get_tightbbox().y0 for ax in axes) - bar.y1
    assert 0 <= gap <= 0.3 * fig.dpi
    left_legend, right_legend = legend_boxes(fig)
    assert left_legend.x1 < right_legend.x0  # the legends keep apart
    assert_no_overlaps(fig)


SAUTER_BANNER = ("All non-state armed group activity: SIMULATED PROJECTS, a placebo, not a "
                 "finding | NOT CONVERGED: max R-hat 1.042 > 1.01; min bulk ESS 88 < 400; "
                 "3 divergences")


@pytest.mark.parametrize("panels", [1, 2])
def test_a_long_warning_stays_inside_the_frame(panels):
    """The Sauter report's banner ran past the red frame on both sides: it is set smaller,
    then broken into lines, and keeps every word."""
    if panels == 1:
        fig, _ = plot_effect_surface(posterior_surface(), value="mean", warning=SAUTER_BANNER)
    else:
        fig, _ = plot_surfaces_side_by_side(ols_surface(), posterior_surface(),
                                            warning=SAUTER_BANNER)
    fig.draw_without_rendering()
    (banner,) = [t for t in fig.findobj(Text) if t.get_gid() == WARNING_GID]
    (frame,) = [a for a in fig.findobj() if a.get_gid() == WARNING_GID + "_frame"]
    inner = frame.get_linewidth() / 2 * fig.dpi / 72  # the frame's width inside the figure
    box = banner.get_bbox_patch().get_window_extent()
    assert fig.bbox.x0 + inner < box.x0 and box.x1 < fig.bbox.x1 - inner
    assert fig.bbox.y0 + inner < box.y0 and box.y1 < fig.bbox.y1 - inner
    assert banner.get_fontsize() >= 9
    assert banner.get_text().split() == SAUTER_BANNER.replace(" | ", " ").split()
    assert_no_overlaps(fig)


def test_no_warning_no_red_text():
    fig, _ = plot_surfaces_side_by_side(ols_surface(), posterior_surface())
    assert not [t for t in fig.findobj(Text) if t.get_gid() == WARNING_GID]


# ------------------------------------------------------------------------------------------
# layout


def _shown_tick_labels(axis) -> list[Text]:
    """Tick labels that are drawn: visible, non-empty and inside the view limits."""
    low, high = sorted(axis.get_view_interval())
    shown = []
    for tick in axis.get_major_ticks():
        inside = low - 1e-9 <= tick.get_loc() <= high + 1e-9
        for label in (tick.label1, tick.label2):
            if inside and label.get_visible() and label.get_text():
                shown.append(label)
    return shown


def _extent(artist, renderer):
    box = artist.get_window_extent(renderer)
    return box if box.width > 0 and box.height > 0 else None


def assert_no_overlaps(fig):
    """No two labels outside the cells overlap, and every cell label fits in its cell."""
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    outside = []
    for ax in all_axes(fig):
        candidates = [*_shown_tick_labels(ax.xaxis), *_shown_tick_labels(ax.yaxis), ax.xaxis.label,
                      ax.yaxis.label, ax.title]
        if ax.get_legend() is not None:
            candidates.append(ax.get_legend())
        for artist in candidates:
            if artist.get_visible() and (not isinstance(artist, Text) or artist.get_text()):
                box = _extent(artist, renderer)
                if box is not None:
                    outside.append((artist, box))
        # Cell labels inside their cell.
        for text in ax.texts:
            if text.get_gid() in (VALUE_GID, NA_GID):
                x, y = text.get_position()
                cell = ax.transData.transform([(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)])
                box = text.get_window_extent(renderer)
                assert cell[0][0] <= box.x0 and box.x1 <= cell[1][0], text.get_text()
                assert cell[0][1] <= box.y0 and box.y1 <= cell[1][1], text.get_text()
    if fig._suptitle is not None:
        outside.append((fig._suptitle, fig._suptitle.get_window_extent(renderer)))
    for (a, box_a), (b, box_b) in itertools.combinations(outside, 2):
        overlap_w = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
        overlap_h = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
        assert not (overlap_w > 0.5 and overlap_h > 0.5), (a, b)
    # And nothing leaves the figure.
    frame = fig.bbox
    for artist, box in outside:
        assert box.x0 >= frame.x0 - 1 and box.x1 <= frame.x1 + 1, artist
        assert box.y0 >= frame.y0 - 1 and box.y1 <= frame.y1 + 1, artist


@pytest.mark.parametrize(
    ("windows", "radii"),
    [
        (WINDOWS, RADII),
        (np.arange(2, 11, 2), np.arange(2, 11, 2)),
        (np.arange(1, 41), np.arange(0.5, 15.1, 0.5)),
    ],
    ids=["6x5", "5x5", "40x30"],
)
def test_no_overlapping_labels(windows, radii):
    fig, _ = plot_effect_surface(ols_surface(windows, radii), title="Effect of QIPs")
    assert_no_overlaps(fig)


def test_r_reference_example_surface(mwa_reference):
    """R's own output for the documented example: 19 of 25 cells are NA."""
    import pandas as pd

    table = pd.read_csv(mwa_reference / "estimates.csv")
    surface = xr.Dataset.from_dataframe(
        table.rename(columns={"t_window": "window", "spat_window": "radius"})
        .set_index(["window", "radius"])[["estimate", "pvalue"]]
    )
    fig, ax = plot_effect_surface(surface)
    assert len(texts(ax, NA_GID)) == 19
    assert hatched(ax) == [(1, 2), (2, 2)]  # windows 4 and 6 at 6 km: p = 0.23 and 0.64
    assert sorted(t.get_text() for t in texts(ax, VALUE_GID)) == [
        "0.04", "0.08", "0.89", "1.00", "1.00", "1.00",
    ]
    assert_no_overlaps(fig)


# ------------------------------------------------------------------------------------------
# save_figure


@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf"])
def test_save_figure_writes_atomically_and_closes(tmp_path, suffix):
    fig, _ = plot_effect_surface(ols_surface())
    target = tmp_path / f"surface{suffix}"
    assert save_figure(fig, target) == target
    data = target.read_bytes()
    assert len(data) > 1000
    magic = {".png": b"\x89PNG", ".svg": b"<?xml", ".pdf": b"%PDF"}[suffix]
    assert data.startswith(magic)
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temp file left
    assert not plt.fignum_exists(fig.number)


def test_save_figure_png_is_200_dpi(tmp_path):
    from PIL import Image

    fig, _ = plot_effect_surface(ols_surface())
    save_figure(fig, tmp_path / "s.png")
    with Image.open(tmp_path / "s.png") as image:
        assert image.info["dpi"][0] == pytest.approx(200, abs=1)


def test_save_figure_replaces_and_cleans_up_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "surface.png"
    target.write_bytes(b"old")
    fig, _ = plot_effect_surface(ols_surface())

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(fig, "savefig", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        save_figure(fig, target)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["surface.png"]
    assert not plt.fignum_exists(fig.number)


def test_save_figure_refuses_unknown_formats(tmp_path):
    fig, _ = plot_effect_surface(ols_surface())
    with pytest.raises(SettingsError, match=".png, .svg or .pdf"):
        save_figure(fig, tmp_path / "surface.jpg")
    assert list(tmp_path.iterdir()) == []
    assert not plt.fignum_exists(fig.number)


# --------------------------------------------------------------------------------------------
# null distributions of the randomisation checks


def _randomisation(kind, count, max_t, n_defined=None):
    from bayes_wake.checks.randomisation import GridStatistics, randomisation_test

    shape = (1, 2, 2)
    t = np.array([[[4.0, 1.0], [0.5, 2.0]]])
    observed = GridStatistics(estimate=t, std_error=np.ones(shape), t=t,
                              pvalue=np.array([[[0.01, 0.3], [0.6, 0.04]]]), alpha=0.05,
                              perfect=np.zeros(shape, bool))
    n = len(count)
    chunk = {"chunk": 0, "n_significant": list(count), "n_significant_positive": list(count),
             "max_abs_t": list(max_t), "n_perfect_fits": [0] * n,
             "n_defined": [4] * n if n_defined is None else list(n_defined)}
    return randomisation_test(kind, observed, [chunk])


def test_null_histograms_show_shares_on_a_finite_axis_and_say_what_they_leave_out():
    from bayes_wake.checks.randomisation import HUGE_T
    from bayes_wake.plotting import null_distribution_caption, plot_null_distributions

    rng = np.random.default_rng(0)
    max_t = rng.uniform(0.5, 4.5, 200)
    max_t[:3] = [1.5e15, 1e308, 2e7]  # near-perfect fits: left out, the axis stays finite
    labels = _randomisation("labels", rng.integers(0, 4, 200), max_t)
    shifts = _randomisation("date_shift", [2] * 50, [3.2] * 50)  # all draws the same
    fig, axes = plot_null_distributions({"labels": labels, "date_shift": shifts})
    assert set(axes) == {"labels:n_significant", "labels:max_abs_t", "date_shift:text"}
    for name in ("labels:n_significant", "labels:max_abs_t"):
        ax = axes[name]
        assert ax.get_ylabel() == "share of valid draws"
        heights = [p.get_height() for p in ax.patches]
        assert sum(heights) == pytest.approx(1.0)
        low, high = ax.get_xlim()
        assert np.isfinite([low, high]).all() and high < 10
    text = [t for t in axes["date_shift:text"].texts if t.get_gid() == NULL_TEXT_GID]
    assert len(text) == 1 and "all 50 valid draws are identical" in text[0].get_text()
    assert "(50 valid draws of 50)" in text[0].get_text().replace("\n", " ")
    caption = null_distribution_caption({"labels": labels, "date_shift": shifts}, HUGE_T)
    assert "label permutations 3 of 200 draws" in caption and "share" in caption


def test_every_check_draws_something_even_without_a_valid_draw():
    from bayes_wake.plotting import plot_null_distributions

    nothing = _randomisation("date_shift", [0] * 30, [0.0] * 30, n_defined=[0] * 30)
    fig, axes = plot_null_distributions({"date_shift": nothing})
    (ax,) = axes.values()
    (text,) = [t for t in ax.texts if t.get_gid() == NULL_TEXT_GID]
    assert "only 0 of 30 draws are valid" in text.get_text().replace("\n", " ")


# --------------------------------------------------------------------------------------------
# the recovery battery


@pytest.mark.parametrize(("n_scenarios", "n_methods"), [(1, 1), (5, 3), (10, 6)])
def test_recovery_legend_covers_no_bar(n_scenarios, n_methods):
    """The legend sat over the coverage panel and hid the bars of the "no effect" scenario."""
    import pandas as pd

    from bayes_wake.plotting import plot_recovery

    rng = np.random.default_rng(n_scenarios)
    scenarios = [f"additive {0.1 * k:.1f}" for k in range(1, n_scenarios)] + ["no effect"]
    methods = ["ols", "smooth_did", "smooth_nb", "poisson", "unpooled_nb", "lagged_nb"]
    summary = pd.DataFrame([
        {"method": m, "scenario": s, "rmse": rng.uniform(0.05, 0.4),
         "coverage": rng.uniform(0.2, 0.99)}
        for m in methods[:n_methods] for s in scenarios])
    fig = plot_recovery(summary)
    fig.draw_without_rendering()
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
    (legend,) = legends
    box = legend.get_window_extent()
    assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1
    assert fig.bbox.y0 <= box.y0 and box.y1 <= fig.bbox.y1
    # every method, and the nominal line of OLS and (with a model) of the posteriors
    assert len(legend.get_texts()) == n_methods + 1 + (n_methods > 1)
    bars = [p.get_window_extent() for ax in fig.axes for p in ax.patches]
    assert len(bars) == 2 * n_scenarios * n_methods
    for bar in bars:
        assert not bar.overlaps(box), (bar, box)
