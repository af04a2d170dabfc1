"""States to bytes and back: the `Codec` seam, and `StateCodec`, the strict JSON default.

A store turns a state into bytes with its codec (`codec=` on every store), then passes the bytes
through its transforms (see `transforms`) to the backend. Any object with `encode(state) ->
bytes` and `decode(bytes) -> state` is a codec; `StateCodec` is the default.

With `StateCodec`, a state is stored as compact UTF-8 JSON. Validation is ours, not the
encoder's, so that the standard library's `json` and the optional `orjson` accept exactly the
same states: encoders differ (orjson writes NaN as null and serializes UUIDs; json turns int
keys into strings), the rules below do not.

Rules: a state is a `dict` with `str` keys whose values are `str`, `int` in the 64-bit range,
finite `float`, `bool`, `None`, `list`/`tuple` or `dict` with `str` keys, nested at most
`MAX_DEPTH` levels. Subclasses of these types are accepted and stored as their base type.
"""

from __future__ import annotations

import json
import marshal
import math
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from .errors import (
    ConfigurationError,
    CorruptedSessionError,
    InvalidArgumentError,
    MissingDependencyError,
    SerializationError,
)

try:
    import orjson
except ImportError:  # pragma: no cover - exercised by the no-extras test
    orjson = None  # type: ignore[assignment]
    _ORJSON_STRICT = 0
else:
    _ORJSON_STRICT = (
        orjson.OPT_PASSTHROUGH_DATACLASS
        | orjson.OPT_PASSTHROUGH_DATETIME
        | orjson.OPT_PASSTHROUGH_SUBCLASS
    )

SessionState = dict[str, Any]
"""A session's state: a JSON object as a Python `dict`."""


@runtime_checkable
class Codec(Protocol):
    """Turns states into bytes and back; give one to a store as `codec=`.

    `decode(encode(state))` must equal what a later `load` should return. Errors: `encode`
    raises `SerializationError` for a state it cannot hold (nothing is written), `decode`
    raises `CorruptedSessionError` for bytes it cannot read (the value is left in place).
    """

    def encode(self, state: Mapping[str, Any]) -> bytes:
        """Return the bytes that store `state`."""
        ...

    def decode(self, data: bytes) -> SessionState:
        """Return the state stored as `data`."""
        ...


MAX_DEPTH = 254
"""Deepest nesting of containers in a state, the top-level dict being level 1: orjson's limit."""

_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1  # what 64-bit JSON readers, orjson among them, parse without loss

_HINTS: dict[str, str] = {
    "datetime": "store value.isoformat() instead",
    "date": "store value.isoformat() instead",
    "time": "store value.isoformat() instead",
    "UUID": "store str(value) instead",
    "Decimal": "store str(value) or float(value) instead",
    "set": "store a list instead, e.g. sorted(value)",
    "frozenset": "store a list instead, e.g. sorted(value)",
    "bytes": "store text instead, e.g. base64.b64encode(value).decode()",
}


class _Invalid(Exception):
    """Raised inside the walk; carries the keys from the offending value up to the state."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.keys: list[str | int] = []


def _reject_type(value: object) -> _Invalid:
    name = type(value).__name__
    hint = _HINTS.get(name, "convert it to str, int, float, bool, None, list or dict")
    return _Invalid(f"is a {name}, which JSON cannot represent; {hint}")


def _check_scalar(value: object, check_strings: bool) -> None:
    """Check a value that is not a container."""
    if isinstance(value, str):
        if check_strings:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise _Invalid(
                    "is a string with a lone surrogate, which is not valid Unicode; "
                    "decode text from bytes with errors='strict' or 'replace'"
                ) from None
    elif isinstance(value, bool) or value is None:
        pass
    elif isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise _Invalid(
                "is an integer outside the 64-bit range that JSON readers accept; "
                "store it as a string"
            )
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise _Invalid(
                f"is {value}, which JSON cannot represent; store None or a string instead"
            )
    else:
        raise _reject_type(value)


def _check(value: object, depth: int, check_strings: bool) -> None:
    """Raise `_Invalid` unless `value` follows the rules in the module docstring."""
    if isinstance(value, dict):
        if depth > MAX_DEPTH:
            raise _Invalid(f"is nested more than {MAX_DEPTH} levels deep; flatten the state")
        for key, item in value.items():
            if not isinstance(key, str):
                raise _Invalid(
                    f"has the key {key!r} of type {type(key).__name__}; JSON object keys "
                    f"must be str, e.g. str({key!r})"
                )
            # The common leaves are decided inline: this loop is on every save's path.
            kind = type(item)
            if (kind is str and not check_strings) or kind is bool or item is None:
                continue
            try:
                _check(item, depth + 1, check_strings)
            except _Invalid as invalid:
                invalid.keys.append(key)
                raise
    elif isinstance(value, (list, tuple)):
        if depth > MAX_DEPTH:
            raise _Invalid(f"is nested more than {MAX_DEPTH} levels deep; flatten the state")
        for index, item in enumerate(value):
            kind = type(item)
            if (kind is str and not check_strings) or kind is bool or item is None:
                continue
            try:
                _check(item, depth + 1, check_strings)
            except _Invalid as invalid:
                invalid.keys.append(index)
                raise
    else:
        _check_scalar(value, check_strings)


def _validate(state: Mapping[str, Any], check_strings: bool) -> None:
    try:
        _check(state, 1, check_strings)
    except _Invalid as invalid:
        path = "state" + "".join(f"[{key!r}]" for key in reversed(invalid.keys))
        raise SerializationError(f"{path} {invalid.reason}; nothing was saved", path=path) from None


_ROUND_TRIP_LIMIT = 1 << 20
"""Above this many bytes of JSON, a state is checked by the walk rather than a round trip, which
would hold a second copy of a large state (the walk holds none)."""


def _orjson_if_plainly_valid(
    state: SessionState, want_copy: bool
) -> tuple[bytes, SessionState | None] | None:
    """Return orjson's encoding of `state`, and its decoding if `want_copy`, or `None`.

    `None` leaves the verdict to the walk: `state` does not plainly obey the rules.

    A shortcut past the walk for the common case, in C. orjson refuses non-str keys, nesting
    beyond `MAX_DEPTH`, out-of-range ints, lone surrogates and (with these options) datetimes,
    dataclasses and subclasses of str, int, dict and list. What it takes but the rules refuse
    is caught by one of two checks:

    - with `want_copy`, the round trip: UUIDs, enums and NaN change it, and so do tuples;
    - else `marshal`, which takes only the exact built-in types (refusing UUIDs, enums,
      fragments, subclasses) and writes each float as its 8 IEEE bytes: a NaN or an infinity
      has the exponent's bits all set, so its last byte is 0x7F or 0xFF. Neither byte in the
      image proves every float finite; either one (rare elsewhere: 0xFF is never UTF-8, 0x7F
      is DEL) sends the state to the round trip. So does a tuple, whose depth orjson does not
      count: `marshal` starts one with `(` or `)` (0xA8 or 0xA9 with its reference flag), and
      any of these bytes (text holds parentheses too) takes the round trip, which no tuple
      survives unchanged. One hole: `marshal` writes any buffer as bytes, so an enum with a
      `bytes` mixin whose value is not bytes is taken as its value (the standard-library
      codec refuses it).

    A large state takes the walk at once, keeping orjson's encoding: neither check would then
    hold a second copy of it.

    Raises:
        SerializationError: A large state breaks a rule.
    """
    try:
        data: bytes = orjson.dumps(state, option=_ORJSON_STRICT)
    except orjson.JSONEncodeError:
        return None
    if len(data) > _ROUND_TRIP_LIMIT:
        _validate(state, check_strings=False)
        return data, None
    if not want_copy:
        try:
            image = marshal.dumps(state)
        except ValueError:  # a type that is not an exact built-in
            return None
        if (  # written out: a generator over the bytes costs as much as the searches
            b"\x7f" not in image
            and b"\xff" not in image
            and b"(" not in image
            and b")" not in image
            and b"\xa8" not in image
            and b"\xa9" not in image
        ):
            return data, None
    try:
        copy = orjson.loads(data)
    except orjson.JSONDecodeError:  # deeper than orjson reads: nested tuples it wrote
        return None
    return (data, copy) if copy == state else None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _stdlib_dumps(state: Mapping[str, Any]) -> bytes:
    text = json.dumps(state, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.encode("utf-8")


def _stdlib_loads(data: bytes | str) -> Any:
    if isinstance(data, str):
        text = data
    elif isinstance(data, (bytes, bytearray, memoryview)):
        text = bytes(data).decode("utf-8")
    else:
        raise TypeError(f"cannot decode a {type(data).__name__}")
    return json.loads(text, parse_constant=_reject_constant)


class StateCodec:
    """Encodes states to compact UTF-8 JSON and decodes them, with one set of rules.

    Args:
        fast: Use `orjson` when it is installed (the default, `None`), always (`True`: it
            must be installed) or never (`False`). Output and validation are the same either way.

    Raises:
        ConfigurationError: `fast` is not `None`, `True` or `False`.
        MissingDependencyError: `fast=True` without orjson installed.
    """

    __slots__ = ("_dumps", "_fast", "_loads", "name")

    def __init__(self, fast: bool | None = None) -> None:
        if fast is not None and not isinstance(fast, bool):
            raise ConfigurationError(
                f"fast must be True, False or None, got a {type(fast).__name__}; pass e.g. "
                "fast=None (orjson when installed)"
            )
        if fast is None:
            fast = orjson is not None
        if fast and orjson is None:
            raise MissingDependencyError(
                "StateCodec(fast=True) needs orjson, which is not installed: "
                "pip install 'valerie[fast]'"
            )
        self.name = "orjson" if fast else "json"
        self._fast = fast
        self._dumps: Callable[[Any], bytes] = orjson.dumps if fast else _stdlib_dumps
        self._loads: Callable[[bytes], Any] = orjson.loads if fast else _stdlib_loads

    def __repr__(self) -> str:
        return f"StateCodec(fast={self._fast})"

    def encode(self, state: Mapping[str, Any]) -> bytes:
        """Return the JSON of `state`.

        Raises:
            SerializationError: `state` breaks a rule of this module; the message names the
                path of the offending value and how to fix it.
        """
        return self._encode(state, want_copy=False)[0]

    def encode_with_copy(self, state: Mapping[str, Any]) -> tuple[bytes, SessionState]:
        """Return the JSON of `state` and what decoding it gives, often at no extra cost.

        Raises:
            SerializationError: As `encode`.
        """
        data, copy = self._encode(state, want_copy=True)
        return data, self.decode(data) if copy is None else copy

    def _encode(
        self, state: Mapping[str, Any], *, want_copy: bool
    ) -> tuple[bytes, SessionState | None]:
        if not isinstance(state, dict):
            if not isinstance(state, Mapping):
                raise SerializationError(
                    f"state must be a dict, got {type(state).__name__}; nothing was saved"
                )
            state = dict(state)
        if self._fast:
            encoded = _orjson_if_plainly_valid(state, want_copy)
            if encoded is not None:
                return encoded
        _validate(state, check_strings=False)
        try:
            return self._dumps(state), None
        except (TypeError, ValueError):
            # Valid states the fast encoder cannot take (tuple subclasses such as
            # namedtuples) go to the standard library; invalid strings fail there too.
            pass
        try:
            return _stdlib_dumps(state), None
        except (TypeError, ValueError) as error:
            _validate(state, check_strings=True)
            raise SerializationError(f"state cannot be encoded as JSON: {error}") from None

    def decode(self, data: bytes) -> SessionState:
        """Return the state stored as `data`.

        Raises:
            InvalidArgumentError: `data` is not bytes (or a str).
            CorruptedSessionError: `data` is not the UTF-8 JSON of an object.
        """
        try:
            state = self._loads(data)
        except (ValueError, TypeError) as error:
            if not isinstance(data, (bytes, bytearray, memoryview, str)):
                raise InvalidArgumentError(
                    f"data must be the bytes of a stored session, got a {type(data).__name__}; "
                    "pass what the backend stored, e.g. the value of a Redis GET"
                ) from None
            raise CorruptedSessionError(
                f"a stored session is not valid JSON ({error}); it was left in place: "
                "inspect it, or delete the session to start over"
            ) from None
        if type(state) is not dict:
            raise CorruptedSessionError(
                f"a stored session holds a JSON {type(state).__name__}, not an object; "
                "it was left in place: inspect it, or delete the session to start over"
            )
        return state
