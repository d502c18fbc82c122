"""The validators every entry point shares (ViT, TrainConfig, the CLI), and the one-line error helper."""
import pytest

from vit_tutorial import validate as V


@pytest.mark.parametrize("check,value,match", [
    (V.positive_int, True, "x must be a positive integer, got True"),
    (V.positive_int, 2.0, "x must be a positive integer, got 2.0"),
    (V.positive_number, True, "x must be a positive number, got True"),
    (V.positive_number, 10 ** 400, "x must be a positive number"),
    (V.positive_number, float("inf"), "x must be a positive number, got inf"),
    (V.non_negative_number, -0.5, "x must be a number >= 0, got -0.5"),
    (V.fraction, 1.0, r"x must be a number in \[0, 1\), got 1.0"),
    (V.fraction, False, r"x must be a number in \[0, 1\), got False"),
    (V.flag, "no", "x must be True or False, got 'no'"),
    (V.flag, 1, "x must be True or False, got 1"),
])
def test_validators_refuse_with_a_message_that_names_the_value(check, value, match):
    with pytest.raises(ValueError, match=match):
        check("x", value)


def test_validators_return_what_they_accept():
    assert V.positive_int("x", 3) == 3 and V.positive_number("x", 2) == 2.0 and V.fraction("x", 0) == 0.0
    assert V.flag("x", False) is False and V.choice("x", "a", ("a", "b")) == "a"
    assert V.integer_in("seed", 0, *V.SEED_RANGE) == 0
    with pytest.raises(ValueError, match="seed must be an integer from 0 to 9223372036854775807, got -1"):
        V.integer_in("seed", -1, *V.SEED_RANGE)


def test_first_line_never_fails_on_an_empty_message():
    assert V.first_line(RuntimeError("")) == "RuntimeError"
    assert V.first_line(OSError()) == "OSError"
    assert V.first_line(ValueError("\n\n  second\nthird")) == "second"
    assert V.first_line(ValueError("x" * 500), 10) == "x" * 10
