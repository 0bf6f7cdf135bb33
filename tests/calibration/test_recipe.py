from __future__ import annotations

import pytest

from ndr_edge.calibration import DEFAULT_RATIOS, CalibrationRecipe
from ndr_edge.errors import InputError


def test_default_recipe_is_valid_and_mixes_every_kind() -> None:
    recipe = CalibrationRecipe()
    assert abs(sum(recipe.ratios.values()) - 1.0) < 1e-9
    assert set(DEFAULT_RATIOS) >= {"clean", "noise", "rain", "haze", "lowres", "mix"}
    counts = recipe.counts()
    assert sum(counts.values()) == recipe.samples
    assert all(n > 0 for n in counts.values())


def test_counts_follow_ratios_by_largest_remainder() -> None:
    recipe = CalibrationRecipe.from_string("noise=0.5,rain=0.25,haze=0.25", samples=10)
    assert recipe.counts() == {"noise": 5, "rain": 3, "haze": 2}  # 2.5/2.5 tie broken by recipe order
    assert sum(CalibrationRecipe.from_string("noise=0.3333333,rain=0.6666667", samples=7).counts().values()) == 7


def test_from_string_round_trips() -> None:
    recipe = CalibrationRecipe.from_string("noise=0.3,rain=0.2,haze=0.2,lowres=0.1,mix=0.2", crop=64, seed=3)
    assert recipe.ratios == {"noise": 0.3, "rain": 0.2, "haze": 0.2, "lowres": 0.1, "mix": 0.2}
    assert CalibrationRecipe.from_string(recipe.to_string(), crop=64, seed=3) == recipe
    assert CalibrationRecipe.from_dict(recipe.to_dict()) == recipe


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("noise=0.3,rain=0.2", "sum to 0.5"),
        ("noise=0.7,rain=0.7", "sum to 1.4"),
        ("noise=0.5,snow=0.5", "unknown degradation 'snow'"),
        ("noise=1.5,rain=-0.5", ">= 0"),
        ("noise", "NAME=RATIO"),
        ("noise=abc", "not a number"),
        ("noise=0.5,noise=0.5", "twice"),
        ("", "no degradations"),
        ("real=0.5,noise=0.5", "cannot be mixed"),
    ],
)
def test_bad_recipes_are_clear_errors(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        CalibrationRecipe.from_string(text)


def test_ratio_tolerance_is_one_in_a_million() -> None:
    CalibrationRecipe.from_string("noise=0.5000004,rain=0.5")
    with pytest.raises(InputError, match="sum"):
        CalibrationRecipe.from_string("noise=0.50001,rain=0.5")


@pytest.mark.parametrize(("field", "value"), [("crop", 30), ("crop", 0), ("samples", 0), ("shard_size", 0)])
def test_bad_sizes(field: str, value: int) -> None:
    with pytest.raises(InputError, match=field.replace("_", " ")):
        CalibrationRecipe(**{field: value})  # type: ignore[arg-type]
