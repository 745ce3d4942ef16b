"""PVE's JSONSchema checks (pve-common src/PVE/JSONSchema.pm: check_prop, check_object, check_type,
parse_property_string), with its error texts, applied to a call's parameters and to an answer."""

from __future__ import annotations

import re
from typing import Any

from . import formats
from .errors import param_error

UNKNOWN = "property is not defined in schema and the schema does not allow additional properties"
MISSING = "property is missing and it is not optional"
NUMBER = re.compile(r"^[+-]?(\d+\.\d+|\d+\.|\.\d+|\d+)([eE][+-]?\d+)?$")
INTEGER = re.compile(r"^[+-]?\d+$")


def _add(errors: dict[str, str], path: str, msg: str) -> None:
    path = path or "_root"
    errors[path] = f"{errors[path]}\\n{msg}" if path in errors else msg


def _num(text: Any) -> str:
    """A schema bound as Perl prints it (100, not 100.0)."""
    if isinstance(text, float) and text.is_integer():
        return str(int(text))
    return str(text)


def _perl_regex(pattern: str) -> str:
    return pattern.replace("(?^:", "(?:").replace("(?^i:", "(?i:")


def expand(properties: dict) -> tuple[dict, list[tuple[re.Pattern, int, dict]]]:
    """Split properties into plain ones and indexed ones (`net[n]` with x-count -> net0..net31)."""
    plain, indexed = {}, []
    for name, schema in properties.items():
        if name.endswith("[n]"):
            indexed.append((re.compile(rf"^{re.escape(name[:-3])}(\d+)$"), schema.get("x-count", 0), schema))
        else:
            plain[name] = schema
    return plain, indexed


def property_schema(properties: dict, key: str) -> dict | None:
    """The schema of one key, indexed keys included (net7 -> net[n] when 7 < its count)."""
    if key in properties and not key.endswith("[n]"):
        return properties[key]
    _, indexed = expand(properties)
    for rx, count, schema in indexed:
        m = rx.match(key)
        if m and int(m.group(1)) < count and str(int(m.group(1))) == m.group(1):
            return schema
    return None


def check_type(path: str, type_: Any, value: Any, errors: dict) -> bool:
    """check_type: a value from the wire is a string; an answer's may be a list, dict, bool or number."""
    if not type_ or type_ == "any":
        return True
    if isinstance(type_, list):
        if any(check_type(path, t, value, {}) for t in type_):
            return True
        _add(errors, path, f"type check ('{'|'.join(type_)}') failed")
        return False
    if type_ == "null":
        if value is not None:
            _add(errors, path, f"type check ('{type_}') failed - value is not null")
            return False
        return True
    if type_ in ("array", "object"):
        if not isinstance(value, list if type_ == "array" else dict):
            _add(errors, path, f"type check ('{type_}') failed")
            return False
        return True
    if isinstance(value, (list, dict)):
        _add(errors, path, f"type check ('{type_}') failed - got {'ARRAY' if isinstance(value, list) else 'HASH'}")
        return False
    if isinstance(value, bool):
        if type_ == "boolean":
            return True
        value = int(value)
    text = _num(value) if isinstance(value, (int, float)) else str(value)
    ok = {"boolean": text in ("0", "1"), "integer": bool(INTEGER.match(text)),
          "number": bool(NUMBER.match(text))}.get(type_, True)
    if not ok:
        _add(errors, path, f"type check ('{type_}') failed - got '{text}'")
    return ok


def parse_property_string(fmt: dict, data: str) -> dict:
    """parse_property_string: `k=v,k=v` (and a default key) into a dict, or FormatError."""
    out: dict[str, str] = {}
    default_key = None
    for part in data.split(","):
        if re.match(r"^\s*$", part):
            continue
        m = re.match(r"^([^=]+)=(.+)$", part, re.DOTALL)
        if m:
            key, value = m.groups()
            if key in out:
                raise formats.FormatError(f"duplicate key in comma-separated list property: {key}\n")
            schema = fmt.get(key)
            if schema and schema.get("alias"):
                key, schema = schema["alias"], fmt.get(schema["alias"])
            if not schema:
                raise formats.FormatError(f"invalid key in comma-separated list property: {key}\n")
            out[key] = _boolean(value) if schema.get("type") == "boolean" else value
        elif "=" not in part:
            if default_key:
                raise formats.FormatError(f"duplicate key in comma-separated list property: {default_key}\n")
            default_key = next((k for k, s in fmt.items() if s.get("default_key")), None)
            if default_key is None:
                raise formats.FormatError("value without key, but schema does not define a default key\n")
            if out.get(default_key):
                raise formats.FormatError(f"duplicate key in comma-separated list property: {default_key}\n")
            schema = fmt[default_key]
            out[default_key] = _boolean(part) if schema.get("type") == "boolean" else part
        else:
            raise formats.FormatError("missing key in comma-separated list property\n")
    return out


def _boolean(text: str) -> str:
    if re.match(r"^(1|on|yes|true)$", text, re.IGNORECASE):
        return "1"
    if re.match(r"^(0|off|no|false)$", text, re.IGNORECASE):
        return "0"
    return text


def check_format(fmt: Any, value: str, path: str) -> None:
    """check_format: a named format, or a property string checked key by key (`format error`)."""
    validator = None
    if isinstance(fmt, str) and fmt in formats.PROPERTY_FORMATS:
        fmt, validator = formats.PROPERTY_FORMATS[fmt], formats.PROPERTY_VALIDATORS.get(fmt)
    if isinstance(fmt, dict):
        parsed = parse_property_string(fmt, value)
        errors: dict[str, str] = {}
        check_object(path, fmt, parsed, 0, errors)
        if errors:
            raise formats.FormatError("format error\n" + "".join(f"{k}: {v}\n" for k, v in errors.items()))
        if validator is not None:
            validator(parsed)
        return
    if fmt == "regex":
        return
    formats.check(fmt, value)


def check_prop(value: Any, schema: dict, path: str, errors: dict) -> None:
    """check_prop: missing, type, then format, pattern, length, bounds and enum of a scalar."""
    if schema.get("alias"):
        return
    if value is None:
        if schema.get("type") != "null" and not schema.get("optional"):
            _add(errors, path, MISSING)
        return
    if not check_type(path, schema.get("type"), value, errors):
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(schema.get("items"), dict):
                check_prop(item, schema["items"], f"{path}[{i}]", errors)
        return
    if isinstance(value, dict):
        if "properties" in schema or schema.get("additionalProperties"):
            check_object(path, schema.get("properties") or {}, value, schema.get("additionalProperties"), errors)
        return
    text = _num(int(value)) if isinstance(value, bool) else _num(value) if isinstance(value, (int, float)) else value
    if schema.get("format"):
        try:
            check_format(schema["format"], text, path)
        except formats.FormatError as exc:
            _add(errors, path, f"invalid format - {exc}")
            return
    if schema.get("pattern") and not re.match(rf"^(?:{_perl_regex(schema['pattern'])})$", text):
        _add(errors, path, "value does not match the regex pattern")
        return
    if schema.get("maxLength") is not None and len(text) > int(schema["maxLength"]):
        _add(errors, path, f"value may only be {schema['maxLength']} characters long")
        return
    if schema.get("minLength") is not None and len(text) < int(schema["minLength"]):
        _add(errors, path, f"value must be at least {schema['minLength']} characters long")
        return
    if NUMBER.match(text):
        if schema.get("maximum") is not None and float(text) > float(schema["maximum"]):
            _add(errors, path, f"value must have a maximum value of {_num(schema['maximum'])}")
            return
        if schema.get("minimum") is not None and float(text) < float(schema["minimum"]):
            _add(errors, path, f"value must have a minimum value of {_num(schema['minimum'])}")
            return
    if schema.get("enum") and text not in [str(e) for e in schema["enum"]]:
        _add(errors, path, f"value '{text}' does not have a value in the enumeration '{', '.join(schema['enum'])}'")


def check_object(path: str, properties: dict, value: dict, additional: Any, errors: dict) -> None:
    """check_object: every property checked (missing ones named), unknown keys refused when not allowed."""
    plain, _ = expand(properties)
    for key, schema in plain.items():
        check_prop(value.get(key), schema, f"{path}.{key}" if path else key, errors)
    for key, item in value.items():
        sub = f"{path}.{key}" if path else key
        schema = property_schema(properties, key)
        if schema is not None:
            if key not in plain:
                check_prop(item, schema, sub, errors)
            requires = schema.get("requires")
            if isinstance(requires, str) and value.get(requires) is None:
                _add(errors, f"{path}.{requires}" if path else requires, f"missing property required by '{sub}'")
            continue
        if additional is not None and not additional:
            _add(errors, sub, UNKNOWN)
        elif isinstance(additional, dict):
            check_prop(item, additional, sub, errors)


def typed(schema: dict, text: str) -> Any:
    """A valid wire value as a handler wants it: booleans and integers as int, numbers as int or float."""
    kind = schema.get("type")
    if kind in ("boolean", "integer"):
        return int(text)
    if kind == "number":
        number = float(text)
        return int(number) if number.is_integer() and INTEGER.match(text) else number
    return text


def validate_params(parameters: dict, params: dict[str, str]) -> dict[str, Any]:
    """The typed parameters of a call, or PVE's 400 `Parameter verification failed.` with every error."""
    errors: dict[str, str] = {}
    properties = parameters.get("properties") or {}
    params = dict(params)
    for key, value in params.items():  # RESTHandler's normalize_legacy_param_formats: one value of an array
        schema = property_schema(properties, key)
        if schema is not None and schema.get("type") == "array" and isinstance(value, str):
            params[key] = [value]
    check_object("", properties, params, parameters.get("additionalProperties", 0), errors)
    if errors:
        raise param_error(errors)
    out: dict[str, Any] = {}
    for key, text in params.items():
        schema = property_schema(properties, key)
        out[key] = typed(schema, text) if schema is not None and isinstance(text, str) else text
    return out


def answer_errors(returns: dict, data: Any) -> dict[str, str]:
    """What PVE's result verification would say of an answer (empty when it matches `returns`)."""
    errors: dict[str, str] = {}
    if data is None and returns.get("type") in (None, "null"):
        return errors
    check_prop(data, {**returns, "optional": returns.get("optional", 0)}, "", errors)
    return errors
