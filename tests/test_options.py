"""The shared options: one validator, the same words wherever an option is given."""

from __future__ import annotations

import pytest

from bayes_wake.errors import SettingsError
from bayes_wake.options import Convention, check_choice


def test_a_bad_choice_names_the_option_and_every_valid_value():
    check_choice("convention", "mwa", Convention)
    with pytest.raises(SettingsError, match=r"^unknown convention 'R'; use 'mwa' or 'exact'$"):
        check_choice("convention", "R", Convention)


def test_every_entry_point_refuses_a_bad_option_in_the_same_words(mwa_example_events, tmp_path):
    from bayes_wake.mwa.analysis import MWASettings
    from bayes_wake.simulate import simulate_study
    from bayes_wake.studies.sauter.settings import SauterSettings
    from bayes_wake.studies.sauter.workflow import reanalyze_sauter
    from bayes_wake.wakes import count_wakes

    words = "unknown convention 'R'; use 'mwa' or 'exact'"
    with pytest.raises(SettingsError, match=words):
        count_wakes(mwa_example_events, [4], [4.0], convention="R")
    with pytest.raises(SettingsError, match=words):
        reanalyze_sauter(SauterSettings("a.csv", "b.geojson", "c.csv", convention="R"),
                         tmp_path / "out")
    with pytest.raises(SettingsError, match=words):
        simulate_study(0).true_effect([10], [3.0], convention="R")
    with pytest.raises(SettingsError, match="unknown formula 'log'; use 'lag' or 'diff'"):
        MWASettings(formula="log")
    assert not (tmp_path / "out").exists()
