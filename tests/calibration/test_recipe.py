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


def _message(text: str | None = None, **kwargs: object) -> str:
    with pytest.raises(InputError) as caught:
        if text is None:
            CalibrationRecipe(**kwargs)  # type: ignore[arg-type]
        else:
            CalibrationRecipe.from_string(text)
    return str(caught.value)


def test_error_messages_are_one_line_and_name_what_to_use() -> None:
    from ndr_edge.degradations import NAMES

    # the unknown-name error lists exactly the names a recipe accepts, comma separated
    message = _message("noise=0.5,snow=0.5")
    assert message.startswith("calibration recipe: unknown degradation 'snow'; choose from ")
    assert tuple(message.split("choose from ", 1)[1].split(", ")) == ("clean", "real", *(n for n in NAMES if n != "clean"))
    for text, start in (("", "calibration recipe: no degradations given; e.g. --recipe "),
                        ("real=0.5,noise=0.5", "calibration recipe: 'real' frames cannot be mixed")):
        message = _message(text)
        assert message.startswith(start) and "XX" not in message
    # the example the first error gives is itself a valid recipe
    example = _message("").split("--recipe ", 1)[1]
    assert CalibrationRecipe.from_string(example).ratios == {"noise": 0.5, "rain": 0.5}
    assert _message("real=0.5,noise=0.5").endswith("synthetic degradations")


@pytest.mark.parametrize("share", [float("nan"), float("inf"), "0.5", None])
def test_a_ratio_must_be_a_finite_number(share: object) -> None:
    # nan would otherwise slip through: nan < 0 is False and a nan sum is not "far from 1"
    message = _message(ratios={"noise": share, "rain": 0.5})
    assert message == f"calibration recipe: ratio of 'noise' must be a number >= 0, got {share!r}"


def test_boundaries_that_are_valid() -> None:
    assert CalibrationRecipe.from_string("noise=1,rain=0").counts() == {"noise": 64, "rain": 0}  # a zero share is allowed
    for field, value in (("crop", 8), ("samples", 1), ("shard_size", 1)):
        recipe = CalibrationRecipe(**{field: value})  # type: ignore[arg-type]
        assert getattr(recipe, field) == value
    assert sum(CalibrationRecipe(samples=1).counts().values()) == 1
    with pytest.raises(InputError, match="crop 12 must be a positive multiple of 8"):
        CalibrationRecipe(crop=12)


def test_real_recipe() -> None:
    recipe = CalibrationRecipe.real(crop=64, samples=5, seed=2)
    assert recipe.is_real and not CalibrationRecipe().is_real
    assert recipe.ratios == {"real": 1.0}
    assert (recipe.crop, recipe.samples, recipe.seed) == (64, 5, 2)
    assert recipe.counts() == {"real": 5}
    assert recipe.to_string() == "real=1"


def test_from_string_skips_empty_parts_and_splits_at_the_first_equals() -> None:
    recipe = CalibrationRecipe.from_string(" noise = 0.5 ,, ,rain=0.5,")
    assert recipe.ratios == {"noise": 0.5, "rain": 0.5}
    assert "ratio of 'noise' is not a number: '0.5=0.5'" in _message("noise=0.5=0.5")
    assert "'=0.5' is not NAME=RATIO" in _message("=0.5")


def test_from_dict_names_unknown_fields() -> None:
    data = {**CalibrationRecipe().to_dict(), "zeta": 1, "alpha": 2}
    with pytest.raises(InputError) as caught:
        CalibrationRecipe.from_dict(data)
    assert str(caught.value) == "calibration recipe: unknown fields alpha, zeta"


def test_counts_by_largest_remainder_against_a_brute_force_rounding() -> None:
    """Largest remainder = the integer split closest to ``samples * ratio`` (L1) that sums to
    ``samples``, ties to the recipe's order; checked by enumerating every split."""
    import itertools

    for text, samples in (("noise=0.45,rain=0.35,haze=0.2", 7), ("clean=0.1,noise=0.6,mix=0.3", 9),
                          ("noise=0.2,rain=0.2,haze=0.2,mix=0.4", 3)):
        recipe = CalibrationRecipe.from_string(text, samples=samples)
        names = list(recipe.ratios)
        exact = [recipe.ratios[n] * samples for n in names]
        splits = [s for s in itertools.product(range(samples + 1), repeat=len(names)) if sum(s) == samples]
        # every count is floor or ceil of its exact share; among those, the closest split
        splits = [s for s in splits if all(abs(c - e) < 1 for c, e in zip(s, exact))]
        best = min(splits, key=lambda s: (round(sum(abs(c - e) for c, e in zip(s, exact)), 9),
                                          [-c for c in s]))
        assert recipe.counts() == dict(zip(names, best)), text
