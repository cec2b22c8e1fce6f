import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from nat_core.schema import Field, SchemaError, parse, spec


@dataclass(frozen=True)
class Inner:
    rate: float = spec(float, default=0.5, minimum=0.0, below=1.0)
    mode: str = spec(str, default="fast", choices=("fast", "slow"))


@dataclass(frozen=True)
class Outer:
    name: str = spec(str, nonempty=True, convert=str.strip)
    count: int = spec(int, minimum=1)
    flag: bool = spec(bool, default=False)
    sizes: tuple[int, ...] = spec(list, default=(2,), nonempty=True, item=Field(int, minimum=2))
    pair: tuple[float, float] = spec(
        list,
        default=(0.0, 1.0),
        rule=lambda v: len(v) == 2 and all(isinstance(x, int | float) for x in v) and v[0] < v[1],
        convert=lambda v: (float(v[0]), float(v[1])),
        describe="[low, high] with low < high",
    )
    weights: dict[str, float] = spec(
        dict, default_factory=dict, keys=("a", "b"), item=Field(float, above=0.0)
    )
    inner: Inner = spec(Inner)
    source: Path = field(default=Path("."), compare=False)


def test_defaults_types_and_conversion():
    out = parse(Outer, {"name": "  x ", "count": 3, "sizes": [2, 5], "inner": None})
    assert out.name == "x" and out.count == 3 and out.flag is False
    assert out.sizes == (2, 5) and out.pair == (0.0, 1.0) and out.weights == {}
    assert out.inner == Inner(rate=0.5, mode="fast")
    with pytest.raises(dataclasses.FrozenInstanceError):
        out.count = 4  # type: ignore[misc]


def test_values_are_converted_and_extra_fields_pass_through():
    out = parse(
        Outer,
        {"name": "n", "count": 1, "pair": [1, 3], "weights": {"a": 2}, "inner": {"rate": "4e-1"}},
        source=Path("/tmp"),
    )
    assert out.pair == (1.0, 3.0) and isinstance(out.pair[0], float)
    assert out.weights == {"a": 2.0}
    assert out.inner.rate == 0.4  # YAML 1.1 reads 4e-1 as a string
    assert out.source == Path("/tmp")


BASE = {"name": "n", "count": 1}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"colour": 1}, "unknown key colour (known: name, count,"),
        ({"inner": {"speed": 1}}, "unknown key inner.speed (known: rate, mode)"),
        ({"weights": {"c": 1.0}}, "unknown key weights.c (known: a, b)"),
        ({"count": 0}, "count must be an integer >= 1, got 0"),
        ({"count": True}, "count must be an integer >= 1, got True"),
        ({"count": 1.5}, "count must be an integer >= 1, got 1.5"),
        ({"name": "  "}, "name must be a non-empty string, got '  '"),
        ({"name": 3}, "name must be a non-empty string, got 3"),
        ({"flag": "yes"}, "flag must be true or false, got 'yes'"),
        ({"sizes": []}, "sizes must be a non-empty list, got []"),
        ({"sizes": [2, 1]}, "sizes[1] must be an integer >= 2, got 1"),
        ({"sizes": 3}, "sizes must be a non-empty list, got 3"),
        ({"pair": [3, 1]}, "pair must be [low, high] with low < high, got [3, 1]"),
        ({"weights": {"a": 0}}, "weights.a must be a number > 0.0, got 0"),
        ({"weights": [1]}, "weights must be a mapping, got [1]"),
        ({"inner": {"rate": 1.0}}, "inner.rate must be a number in [0.0, 1.0), got 1.0"),
        ({"inner": {"rate": "fast"}}, "inner.rate must be a number in [0.0, 1.0), got 'fast'"),
        ({"inner": {"rate": float("nan")}}, "inner.rate must be a number"),
        ({"inner": {"mode": "medium"}}, "inner.mode must be one of fast, slow, got 'medium'"),
        ({"inner": 5}, "inner must be a mapping, got 5"),
    ],
)
def test_errors_name_the_dotted_key_and_the_value(changes, message):
    with pytest.raises(SchemaError) as error:
        parse(Outer, {**BASE, **changes})
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_missing_required_key_and_non_mapping():
    with pytest.raises(SchemaError, match=r"missing key count \(must be an integer >= 1\)"):
        parse(Outer, {"name": "n"})
    with pytest.raises(SchemaError, match="the top level must be a mapping, got"):
        parse(Outer, ["name"])
    assert issubclass(SchemaError, ValueError)


def test_bool_is_not_a_numeric_choice():
    @dataclass(frozen=True)
    class Levels:
        level: int = spec(int, default=1, choices=(0, 1, 2))
        switch: object = spec(bool, default=True, choices=(True, False, "auto"))

    assert parse(Levels, {"level": 2, "switch": "auto"}) == Levels(level=2, switch="auto")
    with pytest.raises(SchemaError, match="level must be one of 0, 1, 2, got True"):
        parse(Levels, {"level": True})


def test_descriptions_of_bounds():
    assert Field(int, minimum=0, maximum=9).description() == "an integer in [0, 9]"
    assert Field(float, above=0.0, maximum=1.0).description() == "a number in (0.0, 1.0]"
    assert Field(float, below=2.0).description() == "a number < 2.0"
    assert Field(list, length=2).description() == "a list of 2 items"
    assert Field(int, describe="a positive count").description() == "a positive count"
