"""The shared integer check and signature defaults."""

from __future__ import annotations

import numpy as np
import pytest

from sb3_maxrl import MaxRL
from sb3_maxrl.common.utils import check_positive_int, is_int, signature_defaults


def test_check_positive_int_accepts_python_and_numpy_ints() -> None:
    assert check_positive_int("n", 3) == 3
    value = check_positive_int("n", np.int64(2), minimum=2)
    assert value == 2 and type(value) is int
    assert is_int(np.uint8(1)) and not is_int(True) and not is_int(2.0)


@pytest.mark.parametrize(
    ("value", "minimum", "message"),
    [
        (0, 1, "n_groups must be an int >= 1, got 0 (start states per update)."),
        (True, 1, "n_groups must be an int >= 1, got True (start states per update)."),
        (2.0, 1, "n_groups must be an int >= 1, got 2.0 (start states per update)."),
        (1, 2, "n_groups must be an int >= 2, got 1 (start states per update)."),
        ("4", 1, "n_groups must be an int >= 1, got '4' (start states per update)."),
    ],
)
def test_check_positive_int_names_the_setting(value: object, minimum: int, message: str) -> None:
    with pytest.raises(ValueError) as error:
        check_positive_int("n_groups", value, "start states per update", minimum=minimum)
    assert str(error.value) == message


def test_signature_defaults() -> None:
    def function(a: int, b: int = 2, *, c: str = "x", d: float) -> None: ...

    assert signature_defaults(function) == {"b": 2, "c": "x"}
    defaults = signature_defaults(MaxRL)  # a class: its __init__ without self
    assert "self" not in defaults and "env" in defaults and defaults["estimator"] == "maxrl"
