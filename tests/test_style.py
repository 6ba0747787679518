"""The house style's colours: the eight methods Explore opens with are told apart by every viewer.

Colour differences are CIEDE2000 (tests/colour_vision.py, checked against Sharma, Wu & Dalal's published test
pairs), under normal vision and under simulated protanopia, deuteranopia and tritanopia (Machado et al. 2009).
"""
import itertools

import pytest

from figures.style import END_COLOUR, METHOD_COLOURS, PARETO_COLOUR, START_COLOUR
from tests.colour_vision import MACHADO, VISIONS, ciede2000, lab
from views.explore_model import DEFAULT_METHODS

SHARMA = [((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
          ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
          ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
          ((90.8027, -2.0831, 1.4410), (91.1528, -1.6435, 0.0447), 1.4441)]


@pytest.mark.parametrize("a, b, expected", SHARMA)
def test_the_colour_difference_formula_matches_the_published_test_pairs(a, b, expected):
    assert ciede2000(a, b) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("vision", VISIONS)
def test_the_default_methods_have_eight_distinguishable_colours(vision):
    colours = [METHOD_COLOURS[m] for m in DEFAULT_METHODS]
    assert len(set(colours)) == 8
    floor = 18.0 if vision == "normal" else 7.0
    worst = min((ciede2000(lab(a, vision), lab(b, vision)), a, b) for a, b in itertools.combinations(colours, 2))
    assert worst[0] >= floor, worst


def test_default_method_colours_stand_apart_from_the_marks_and_the_contour():
    for c in (METHOD_COLOURS[m] for m in DEFAULT_METHODS):
        for vision in VISIONS:
            assert ciede2000(lab(c, vision), lab("#fbfbfb", vision)) >= 25          # the light contour
            for mark in (END_COLOUR, PARETO_COLOUR, START_COLOUR):
                assert ciede2000(lab(c, vision), lab(mark, vision)) >= 8, (c, mark, vision)


def test_every_method_has_a_colour_of_its_own():
    assert len(set(METHOD_COLOURS.values())) == len(METHOD_COLOURS)
    assert set(MACHADO) == {"protanopia", "deuteranopia", "tritanopia"}
