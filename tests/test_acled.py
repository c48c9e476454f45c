"""The ACLED adapter: both layouts, dates, outcome filters, drops, and clear errors.

Every file here is written by the test with made-up values (``synthetic.py``); the real export
in ``../shared/data`` is read in place and never copied.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synthetic import made_up_events, write_dyadic, write_monadic

from bayes_wake.errors import EventDataError, SettingsError
from bayes_wake.studies.sauter.acled import OUTCOMES, Outcome, parse_outcome, read_acled

CORE = ["event_id_cnty", "time", "lon", "lat", "event_type", "actor1", "inter1", "actor2",
        "inter2", "admin1"]


@pytest.fixture()
def events() -> list[dict]:
    return made_up_events(120, seed=3)


def test_monadic_export_is_rebuilt_to_one_row_per_event_equal_to_the_dyadic_file(
        tmp_path, events):
    monadic = read_acled(write_monadic(tmp_path / "m.csv", events))
    dyadic = read_acled(write_dyadic(tmp_path / "d.csv", events))
    assert monadic.attrs["layout"] == "monadic" and dyadic.attrs["layout"] == "dyadic"
    two_actors = sum(1 for e in events if e["inter2"])
    assert monadic.attrs["rows_read"] == len(events) + two_actors
    assert monadic.attrs["events_read"] == len(events) == len(monadic)
    pd.testing.assert_frame_equal(monadic[CORE], dyadic[CORE])
    expected = pd.DataFrame(events)
    assert monadic["event_id_cnty"].tolist() == expected["event_id_cnty"].tolist()
    assert monadic["inter2"].tolist() == expected["inter2"].tolist()
    single = monadic["inter2"] == 0
    assert monadic.loc[single, "actor2"].isna().all()
    assert (monadic.loc[~single, "actor2"] == expected.loc[~single.to_numpy(), "actor2"]).all()


def test_dates_in_both_spellings_are_midnight_utc(tmp_path, events):
    iso = read_acled(write_dyadic(tmp_path / "iso.csv", events, iso_dates=True))
    spelled = read_acled(write_dyadic(tmp_path / "spelled.csv", events, iso_dates=False))
    pd.testing.assert_series_equal(iso["time"], spelled["time"])
    assert str(iso["time"].dtype) == "datetime64[ns, UTC]"
    assert iso["time"].iloc[0] == pd.Timestamp(events[0]["date"], tz="UTC")
    assert (iso["time"].dt.hour == 0).all()


def test_dates_given_only_to_the_year_are_refused(tmp_path, events):
    path = write_dyadic(tmp_path / "iso.csv", events, iso_dates=True)
    lines = path.read_text().splitlines()
    first = events[0]["date"]
    assert first in lines[1]
    lines[1] = lines[1].replace(first, first[:4], 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(EventDataError, match="1 of .* dates are given 1 to the year only") \
            as info:
        read_acled(path)
    assert info.value.rows == [1] and str(path) in str(info.value)


def test_three_outcomes_follow_their_documented_rules(tmp_path, events):
    table = read_acled(write_dyadic(tmp_path / "d.csv", events))
    frame = pd.DataFrame(events)
    nsag = frame["inter1"].isin([2, 3, 4]) | frame["inter2"].isin([2, 3, 4])
    expected = {
        "vac": frame["event_type"] == "Violence against civilians",
        "battles_nsag": (frame["event_type"] == "Battles") & nsag,
        "nsag": nsag,
    }
    for name, mask in expected.items():
        assert OUTCOMES[name].select(table).tolist() == mask.tolist(), name
        assert 0 < mask.sum() < len(frame)
    # state-only battles are battles but not NSAG battles
    assert ((frame["event_type"] == "Battles") & ~nsag).any()


def test_outcomes_can_be_overridden_and_new_ones_defined():
    narrow = parse_outcome("nsag:inter_codes=2,3")
    assert narrow.inter_codes == (2, 3) and narrow.event_types is None
    assert "overridden" in narrow.description
    assert parse_outcome("vac") is OUTCOMES["vac"]
    anything = parse_outcome("battles_nsag:inter_codes=any")
    assert anything.inter_codes is None and anything.event_types == ("Battles",)
    new = parse_outcome("explosions:event_types=Explosions/Remote violence;label=Explosions")
    assert new.label == "Explosions" and new.event_types == ("Explosions/Remote violence",)
    assert OUTCOMES["battles_nsag"].replace(inter_codes=(2,)).inter_codes == (2,)
    with pytest.raises(SettingsError, match="unknown outcome 'riots'"):
        parse_outcome("riots")
    with pytest.raises(SettingsError, match="unknown field 'inter'"):
        parse_outcome("nsag:inter=2")
    with pytest.raises(SettingsError, match="whole numbers"):
        parse_outcome("nsag:inter_codes=rebels")
    with pytest.raises(SettingsError, match="unknown inter code"):
        Outcome(name="x", label="x", inter_codes=(9,))


def test_event_type_match_ignores_case_and_accents(tmp_path, events):
    table = read_acled(write_dyadic(tmp_path / "d.csv", events))
    loose = Outcome(name="vac2", label="VAC", event_types=("violence AGAINST civilians",))
    assert loose.select(table).tolist() == OUTCOMES["vac"].select(table).tolist()


def test_period_and_missing_coordinates_are_dropped_and_counted(tmp_path, events):
    events[0]["latitude"] = ""
    events[1]["longitude"] = ""
    events[2]["date"] = "2016-12-31"
    events[3]["date"] = "2021-01-01"
    table = read_acled(write_dyadic(tmp_path / "d.csv", events), start="2017-01-01",
                       end="2020-12-31")
    dropped = {d["reason"]: d["events"] for d in table.attrs["dropped"]}
    assert dropped == {"missing coordinates": 2, "before the study period (2017-01-01)": 1,
                       "after the study period (2020-12-31)": 1}
    assert len(table) == len(events) - 4
    assert table.attrs["events_read"] == len(events)
    assert (table["file_row"].iloc[:2] == [5, 6]).all()  # 1-based rows of the file


def test_text_inter_codes_and_upper_case_headers(tmp_path, events):
    path = write_dyadic(tmp_path / "d.csv", events)
    frame = pd.read_csv(path, dtype=str)
    names = {"1": "State forces", "2": "Rebel group", "3": "Political militia",
             "4": "Identity militia", "6": "Protesters", "7": "Civilians", "0": ""}
    frame["inter1"] = frame["inter1"].map(names)
    frame["inter2"] = frame["inter2"].map(names)
    frame.columns = [c.upper() for c in frame.columns]
    frame.to_csv(tmp_path / "new.csv", index=False)
    new = read_acled(tmp_path / "new.csv")
    old = read_acled(path)
    pd.testing.assert_series_equal(new["inter1"], old["inter1"])
    pd.testing.assert_series_equal(new["inter2"], old["inter2"])


@pytest.mark.parametrize("change, message, column", [
    (lambda f: f.assign(event_date=f["event_date"].where(f.index != 4, "31/31/2020")),
     "cannot parse the date '31/31/2020'", "event_date"),
    (lambda f: f.assign(latitude=f["latitude"].where(f.index != 2, "north")),
     "latitude is not a number: 'north'", "latitude"),
    (lambda f: f.assign(latitude=f["latitude"].where(f.index != 2, "114.5")),
     "latitude not in [-90, 90]", "latitude"),
    (lambda f: f.assign(inter1=f["inter1"].where(f.index != 2, "Aliens")),
     "unknown ACLED actor type 'Aliens'", "inter1"),
])
def test_bad_cells_are_named_by_file_row_and_column(tmp_path, events, change, message, column):
    path = write_dyadic(tmp_path / "d.csv", events)
    change(pd.read_csv(path, dtype=str)).to_csv(path, index=False)
    with pytest.raises(EventDataError) as info:
        read_acled(path)
    assert message in str(info.value)
    assert info.value.column == column and info.value.path == str(path)
    assert info.value.rows in ([5], [3])


def test_files_that_are_not_acled_exports_say_so(tmp_path, events):
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(EventDataError, match="not an ACLED export: no column 'event_id_cnty'"):
        read_acled(path)
    with pytest.raises(EventDataError, match="not found"):
        read_acled(tmp_path / "missing.csv")
    with pytest.raises(EventDataError, match="spreadsheet"):
        (tmp_path / "x.xlsx").write_bytes(b"PK")
        read_acled(tmp_path / "x.xlsx")
    with pytest.raises(SettingsError, match="layout"):
        read_acled(write_dyadic(tmp_path / "d.csv", events), layout="triadic")


def test_monadic_rows_that_disagree_or_repeat_are_errors(tmp_path, events):
    path = write_monadic(tmp_path / "m.csv", events)
    frame = pd.read_csv(path, dtype=str)
    pair = frame.index[frame["event_id_cnty"].duplicated(keep=False)][:2]
    broken = frame.copy()
    broken.loc[pair[1], "latitude"] = "10.0"
    broken.to_csv(path, index=False)
    with pytest.raises(EventDataError, match="disagree on latitude") as info:
        read_acled(path)
    assert info.value.rows == [int(pair[1]) + 1]
    tripled = pd.concat([frame, frame.loc[[pair[0]]]]).sort_index(kind="stable")
    tripled.to_csv(path, index=False)
    with pytest.raises(EventDataError, match="more than two rows"):
        read_acled(path)


def test_real_export_in_both_layouts(shared_data: Path):
    folder = shared_data / "acled_mali_2017_2020"
    monadic = read_acled(folder / "2017-01-01-2020-12-31-Mali.csv", start="2017-01-01",
                         end="2020-12-31")
    dyadic = read_acled(folder / "acled_mali_2017_2020_dyadic_reconstructed.csv")
    assert monadic.attrs["layout"] == "monadic" and monadic.attrs["rows_read"] == 6214
    assert len(monadic) == len(dyadic) == 3314  # PROVENANCE.md: 3,314 unique events
    pd.testing.assert_frame_equal(monadic[CORE], dyadic[CORE])
    assert int(OUTCOMES["vac"].select(monadic).sum()) == 1128  # PROVENANCE.md
    assert sum(d["events"] for d in monadic.attrs["dropped"]) == 0
    assert np.isin(monadic["inter2"], list(range(9))).all()
