"""Small helpers shared by the library, the command-line tools and the benchmarks."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np


def is_int(value: Any) -> bool:
    """
    Whether ``value`` is an integer: a Python or numpy int, not a bool.

    :param value: any object
    """
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def check_positive_int(name: str, value: Any, hint: str = "", *, minimum: int = 1) -> int:
    """
    Check an integer setting and return it as a Python int.

    :param name: the setting's name, used in the error message
    :param value: the value given
    :param hint: what the setting is for or what to pass instead, appended to the error message
    :param minimum: the smallest allowed value
    :return: ``int(value)``
    :raises ValueError: if ``value`` is not an int (bools and floats are refused) or is below ``minimum``
    """
    if not is_int(value) or value < minimum:
        details = f" ({hint})" if hint else ""
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}{details}.")
    return int(value)


def signature_defaults(function: Callable[..., Any]) -> dict[str, Any]:
    """
    The default values of a function's (or a class's ``__init__``'s) keyword parameters.

    :param function: a function or a class
    :return: parameter name -> default, for the parameters that have one, in signature order
    """
    return {
        name: parameter.default
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }
