"""Events as canonical JSON and back: the encoding the journal hashes.

:func:`canonical` is the one byte form of a JSON value (sorted keys, no
whitespace, UTF-8); :func:`event_json` and :func:`decode_event` turn events into
plain dicts and back, with per-class encoders and builders made once (the journal
writes and reads hundreds of thousands of them).

Decoding checks every field against the type its dataclass declares (``str``,
``int``, ``bool``, ``float``, ``X | None``, ``tuple[str, ...]``) and that an output
chunk's ``b64`` is base64: a correctly chained record with a wrong field type (a hand
edit with the hashes recomputed) is a ``TypeError`` naming the field, which the
journal reports as a bad record at its seq, instead of an event that crashes a reader
later.  :func:`_decode_owned` (the journal reader, ``verify``) and :func:`decode_event`
(the export) share these checks.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import operator
from collections.abc import Callable
from typing import Any

from sessions import events as _events
from sessions.events import Event

_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, check_circular=False)
_ASCII_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True, check_circular=False)


def _not_json(o: Any) -> Any:
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


# The C encoder behind _ENCODER.encode(), made once instead of on every call.
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
_c_encode_basestring = getattr(json.encoder, "c_encode_basestring", None)
_C_ENCODE = (_c_make_encoder(None, _not_json, _c_encode_basestring, None, ":", ",", True, False, True)
             if _c_make_encoder is not None and _c_encode_basestring is not None else None)


def canonical(obj: Any) -> bytes:
    """Canonical JSON: sorted keys, no whitespace, UTF-8.

    A string holding an unpaired surrogate is not Unicode and cannot be UTF-8: such a
    value is written with ASCII ``\\u`` escapes instead (still valid JSON).
    """
    try:
        if _C_ENCODE is not None and type(obj) is dict:
            return "".join(_C_ENCODE(obj, 0)).encode("utf-8")
        return _ENCODER.encode(obj).encode("utf-8")
    except UnicodeEncodeError:
        return _ASCII_ENCODER.encode(obj).encode("ascii")


# --- events <-> JSON ---------------------------------------------------

_ENCODERS: dict[type, Callable[[Event], dict[str, Any]]] = {}
_DECODERS: dict[str, tuple[type[Event], frozenset[str]]] = {}


def _make_event_encoder(cls: type[Event]) -> Callable[[Event], dict[str, Any]]:
    names = tuple(f.name for f in dataclasses.fields(cls))
    if len(names) == 1:
        name = names[0]
        return lambda e: {"type": cls.TYPE, name: getattr(e, name)}
    get = operator.attrgetter(*names)
    type_name = cls.TYPE

    def encode(e: Event) -> dict[str, Any]:
        data = dict(zip(names, get(e), strict=True))
        data["type"] = type_name
        return data

    return encode


def event_json(event: Event) -> dict[str, Any]:
    """``event.to_json()``, without looking up the dataclass fields every time."""
    cls = type(event)
    encode = _ENCODERS.get(cls)
    if encode is None:
        if cls.to_json is not Event.to_json:
            return event.to_json()
        encode = _ENCODERS[cls] = _make_event_encoder(cls)
    return encode(event)


# field type (as declared, a string under ``from __future__ import annotations``) ->
# (expression that is true when ``v`` has a wrong type, what the type is called)
_CHECKS: dict[str, tuple[str, str]] = {
    "str": ("type(v) is not str", "a string"),
    "Outcome": ("type(v) is not str", "a string"),
    "int": ("type(v) is not int", "an integer"),
    "bool": ("type(v) is not bool", "true or false"),
    "float": ("type(v) is not float and type(v) is not int", "a number"),
    "str | None": ("v is not None and type(v) is not str", "a string or null"),
    "int | None": ("v is not None and type(v) is not int", "an integer or null"),
    "tuple[str, ...]": ("(type(v) is not tuple and type(v) is not list) or any(type(x) is not str for x in v)",
                        "a list of strings"),
}


_COMPILED: dict[str, Any] = {}


def _type_name(v: Any) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "a boolean", list: "a list",
            dict: "an object", type(None): "null"}.get(type(v), type(v).__name__)


def _wrong_type(cls: type[Event], name: str, expected: str, v: Any) -> TypeError:
    got = _type_name(v)
    if type(v) in (list, tuple):
        bad = next((x for x in v if type(x) is not str), None)
        got = f"a list holding {_type_name(bad)}"
    return TypeError(f"{cls.TYPE}: field {name!r} must be {expected}, not {got}")


def _check_b64(event: Event) -> None:
    b64 = getattr(event, "b64", None)
    if b64 is not None:
        try:
            base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise TypeError(f"{event.TYPE}: field 'b64' is not base64") from None


def check_fields(event: Event) -> Event:
    """Check a built event's fields against their declared types (:class:`TypeError` naming
    the field); return the event."""
    cls = type(event)
    for f in dataclasses.fields(cls):
        check = _CHECKS.get(f.type) if isinstance(f.type, str) else None
        if check is None:
            continue
        code = _COMPILED.get(check[0])
        if code is None:
            code = _COMPILED[check[0]] = compile(check[0], "<field check>", "eval")
        v = getattr(event, f.name)
        if eval(code, {}, {"v": v}):
            raise _wrong_type(cls, f.name, check[1], v)
    if cls is _events.OutputChunk:
        _check_b64(event)
    return event


def _decoder(type_name: Any) -> tuple[type[Event], frozenset[str]]:
    entry = _DECODERS.get(type_name)
    if entry is None:
        cls = _events.event_types().get(type_name)
        if cls is None:
            raise _events.UnknownEvent(f"unknown event type {type_name!r}")
        entry = _DECODERS[cls.TYPE] = (cls, frozenset(f.name for f in dataclasses.fields(cls)))
    return entry


def decode_event(data: Any) -> Event:
    """Build an event from its JSON form (as ``events.event_from_json``; lists become tuples)."""
    if not isinstance(data, dict):
        raise ValueError("event is not an object")
    return _decode_owned(data)  # the journal reader's decoder: it only reads ``data``


_BUILDERS: dict[Any, Callable[[dict[str, Any]], Event]] = {}
_MISSING = object()


def _make_builder(cls: type[Event]) -> Callable[[dict[str, Any]], Event]:
    """A constructor from a JSON dict that skips ``__init__`` (as ``_clone`` in state.py):
    required fields must be present, unknown keys are ignored, lists become tuples.
    Classes with ``__post_init__`` or default factories go through ``__init__``."""
    fields = dataclasses.fields(cls)
    if "__post_init__" in cls.__dict__ or "__slots__" not in cls.__dict__ or any(
            f.default_factory is not dataclasses.MISSING for f in fields):
        names = frozenset(f.name for f in fields)
        return lambda d: check_fields(cls(**{k: (tuple(v) if type(v) is list else v)
                                             for k, v in d.items() if k in names}))
    lines = ["def build(d):", "    new = _new(cls)"]
    defaults: dict[str, Any] = {"_new": object.__new__, "_set": object.__setattr__, "cls": cls,
                                "_MISSING": _MISSING, "_fix": _listless, "_wrong": _wrong_type,
                                "_check_b64": _check_b64}
    for f in fields:
        if f.default is dataclasses.MISSING:
            lines.append(f"    v = d.get({f.name!r}, _MISSING)")
            lines.append(f"    if v is _MISSING: raise TypeError('{cls.TYPE}: missing field {f.name}')")
        else:
            defaults[f"_d_{f.name}"] = f.default
            lines.append(f"    v = d.get({f.name!r}, _d_{f.name})")
        check = _CHECKS.get(f.type) if isinstance(f.type, str) else None
        if check is not None:
            lines.append(f"    if {check[0]}: raise _wrong(cls, {f.name!r}, {check[1]!r}, v)")
        lines.append(f"    _set(new, {f.name!r}, _fix(v) if type(v) is list else v)")
    if cls is _events.OutputChunk:
        lines.append("    if new.b64 is not None: _check_b64(new)")
    lines.append("    return new")
    exec("\n".join(lines), defaults)
    return defaults["build"]


def _listless(v: list[Any]) -> tuple[Any, ...]:
    return tuple(_listless(x) if type(x) is list else x for x in v)


def _decode_owned(data: dict[str, Any]) -> Event:
    """:func:`decode_event` for a dict nobody else holds (fast; it may be consumed)."""
    kind = data.get("type")
    build = _BUILDERS.get(kind)
    if build is None:
        cls, _ = _decoder(kind)
        build = _BUILDERS[kind] = _make_builder(cls)
    return build(data)
