"""Pydantic glue: a model's instances to JSON dicts and back, validated from JSON bytes.

The type comes from the code, never from the data: validation builds only what the declared
model names, so a stored value cannot make the store import, construct or call anything else.
No pickle anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import Any, Generic, TypeVar

from ..errors import (
    ConfigurationError,
    MissingDependencyError,
    SerializationError,
    StateValidationError,
)

try:
    from pydantic import BaseModel, PydanticUserError, TypeAdapter, ValidationError
    from pydantic_core import ErrorDetails, PydanticSerializationError, to_json
except ImportError as missing:  # pragma: no cover - exercised by the no-extras test
    raise MissingDependencyError(
        "typed sessions need Pydantic v2, which is not installed: pip install 'valerie[pydantic]'"
    ) from missing

try:
    from orjson import dumps as _orjson_dumps
except ImportError:  # pragma: no cover - exercised by the no-extras test
    _orjson_dumps = None  # type: ignore[assignment]

_dumps: Callable[[Any], bytes] = to_json if _orjson_dumps is None else _orjson_dumps

M = TypeVar("M")

_FIELD = re.compile(r"field_name='([^']*)'")
_EXPECTED = re.compile(r"Expected `([^`]*)`")


class ModelCodec(Generic[M]):
    """Dumps instances of `model` to JSON dicts, and validates stored JSON against it.

    Args:
        model: A Pydantic v2 model, a dataclass, a `typing_extensions.TypedDict`, or any type
            Pydantic's `TypeAdapter` takes whose JSON is an object.

    Raises:
        ConfigurationError: Pydantic cannot build a schema for `model`.
    """

    __slots__ = ("_adapter", "_instance_of", "model", "name")

    def __init__(self, model: type[M]) -> None:
        self.model = model
        self.name: str = getattr(model, "__name__", repr(model))
        try:
            self._adapter: TypeAdapter[M] = TypeAdapter(model)
        except (PydanticUserError, TypeError, ValueError) as error:
            raise ConfigurationError(
                f"Pydantic cannot build a schema for {self.name}: {error}"
            ) from None
        # Classes whose instances can be told by isinstance (models, dataclasses); a TypedDict
        # is a plain dict, checked by the dump instead.
        is_class = isinstance(model, type) and not hasattr(model, "__total__")
        self._instance_of: type | None = model if is_class else None

    def fields(self) -> Collection[str]:
        """Return the model's top-level JSON keys (aliases included), when Pydantic says."""
        if isinstance(self.model, type) and issubclass(self.model, BaseModel):
            names: set[str] = set()
            for name, field in self.model.model_fields.items():
                names.update(
                    alias
                    for alias in (name, field.alias, field.serialization_alias)
                    if isinstance(alias, str)
                )
            return names
        try:
            schema = self._adapter.json_schema(mode="serialization")
        except Exception:  # a type without a JSON schema: nothing to clash with
            return ()
        return tuple(schema.get("properties", ()))

    def dump(self, state: object) -> dict[str, Any]:
        """Return the JSON dump of `state` as a dict (Pydantic's `mode="json"`).

        Raises:
            SerializationError: `state` is not a `model`, or cannot be dumped to a JSON object;
                nothing was written.
        """
        if self._instance_of is not None and not isinstance(state, self._instance_of):
            raise SerializationError(
                f"state must be a {self.name}, got a {type(state).__name__}; nothing was saved"
            )
        try:
            data = self._adapter.dump_python(state, mode="json", warnings="error")  # type: ignore[arg-type]
        except (PydanticSerializationError, ValueError, TypeError) as error:
            raise _unserializable(self.name, error) from None
        if type(data) is not dict:
            raise SerializationError(
                f"the JSON dump of {self.name} is a {type(data).__name__}, not an object; "
                "type sessions with a model whose JSON is an object; nothing was saved"
            )
        return data

    def load(self, session_id: str, state: dict[str, Any]) -> M:
        """Validate a stored state (without its version key) as JSON against the model.

        Validated from JSON, not from the dict, so that JSON-mode rules apply (strict models,
        base64 bytes) exactly as when the value was dumped.

        Raises:
            StateValidationError: It does not validate; the message names each field path.
        """
        return self.load_json(session_id, _dumps(state))

    def load_json(self, session_id: str, data: bytes) -> M:
        """Validate stored JSON bytes against the model; see `load`."""
        try:
            # The core validator itself: the adapter's Python wrapper costs ~10% of a 2 KB load.
            return self._adapter.validator.validate_json(data)  # type: ignore[no-any-return]
        except ValidationError as error:
            raise _invalid(self.name, session_id, error) from None


def _path(location: tuple[str | int, ...]) -> str:
    return "state" + "".join(f"[{key!r}]" for key in location)


_FROM_THE_INPUT = ("error", "tag", "attribute", "encoding_error", "tz_actual")
"""Context of Pydantic's messages that quotes the stored value (the rest comes from the model)."""


def _without_input(problem: ErrorDetails) -> str:
    message = problem["msg"]
    context = problem.get("ctx") or {}
    for key in _FROM_THE_INPUT:
        if key in context:
            message = message.replace(str(context[key]), "…")
    return message


def _invalid(name: str, session_id: str, error: ValidationError) -> StateValidationError:
    problems = error.errors(include_url=False, include_input=False)
    paths = tuple(_path(problem["loc"]) for problem in problems)
    listed = "; ".join(
        f"{path}: {_without_input(problem)}" for path, problem in zip(paths, problems, strict=True)
    )
    return StateValidationError(
        f"a stored session is not a valid {name} ({listed}); it was left in place: add a "
        "migration for it, or delete the session",
        session_id,
        paths,
    )


def _unserializable(name: str, error: Exception) -> SerializationError:
    # Pydantic's message quotes the offending value: keep only the field and the expected type.
    text = str(error)
    field = _FIELD.search(text)
    expected = _EXPECTED.search(text)
    path = "state" if field is None else f"state[{field.group(1)!r}]"
    reason = f"is not a {expected.group(1)}" if expected else f"fails ({type(error).__name__})"
    return SerializationError(
        f"a {name} cannot be dumped to JSON: {path} {reason}; fix the value (or the model's "
        "serializer); nothing was saved",
        path=path,
    )
