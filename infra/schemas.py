"""The spec schemas (schemas/*.json) as validators, and their errors as messages that say how to fix them.

Two differences between JSON Schema as written and jsonschema's Python implementation are closed here:
- `pattern` is an ECMA-262 regex, whose `$` matches only at the very end of the value; Python's `$`
  also matches before a final newline, so "name\\n" would pass ^[a-z]+$. A final `$` is searched as `\\Z`.
- "type": "number" accepts NaN and infinity in Python (every comparison with NaN is false, so no
  minimum or maximum catches it either); here a number must be finite.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators

from infra.yamlload import child_path

SCHEMAS_DIR = Path(__file__).resolve().parents[1] / "schemas"
DNS_LABEL = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
WORKLOAD_NAME = "^[a-z]([-a-z0-9]*[a-z0-9])?$"
# What a value failing each pattern of the schemas is not, and how to write it; a test checks every pattern has one.
PATTERNS = {
    DNS_LABEL: ("a DNS-1123 label",
                "use lower-case letters, digits and '-', starting and ending with a letter or digit"),
    WORKLOAD_NAME: ("a valid workload name",
                    "use lower-case letters, digits and '-', starting with a letter and ending with a letter or digit"),
    "^https://[^\\s]+$": ("an https URL", "write an https:// URL without spaces; data is fetched over https only"),
    "^/[A-Za-z0-9._/-]*$": ("a plain absolute path",
                            "use letters, digits, '.', '_', '-' and '/', starting with '/', e.g. /mnt/results"),
    "^([a-z0-9-]|\\{team\\})+$": ("a namespace template",
                                  "use lower-case letters, digits, '-' and {team}, e.g. \"{team}\" or \"ml-{team}\""),
    "^[a-z0-9]{5,50}\\.azurecr\\.io$": ("an ACR login server", "write <registry name>.azurecr.io, e.g. myteam.azurecr.io"),
    "^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$":
        ("a repository path", "use lower-case path components separated by '/', e.g. adapters/phi3-dolly"),
    "^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$":
        ("an image tag", "use letters, digits, '_', '.' and '-', not starting with '.' or '-', e.g. v1"),
    "^[A-Za-z_][A-Za-z0-9_.]*$": ("a module name", "write a module name such as q_proj or model.layers.0.mlp"),
    "^v?[0-9]+\\.[0-9]+\\.[0-9]+$": ("a KAITO version", "write the version the cluster runs as MAJOR.MINOR.PATCH, e.g. 0.12.0"),
}
_TYPE_WORDS = {"string": "a string", "integer": "a whole number", "number": "a number", "boolean": "true or false",
               "array": "a list", "object": "a mapping", "null": "null"}
_YAML11_EXPONENT = re.compile(r"([-+]?[0-9]+)([eE][-+]?[0-9]+)")  # a number in YAML 1.2, a string in PyYAML's 1.1


@cache
def _ecma(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern[:-1] + r"\Z" if pattern.endswith("$") and not pattern.endswith("\\$") else pattern)


def _pattern(validator, pattern: str, instance: Any, schema: dict[str, Any]):
    if validator.is_type(instance, "string") and not _ecma(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _finite_number(checker, instance: Any) -> bool:
    return Draft202012Validator.TYPE_CHECKER.is_type(instance, "number") and \
        (not isinstance(instance, float) or math.isfinite(instance))


SpecValidator = validators.extend(
    Draft202012Validator, {"pattern": _pattern},
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("number", _finite_number))


@cache
def validator(schema_file: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS_DIR / schema_file).read_text(encoding="utf-8"))
    return SpecValidator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def all_patterns() -> list[tuple[str, str]]:
    """(schema file, pattern) for every distinct `pattern` in schemas/*.json."""
    found: dict[tuple[str, str], None] = {}

    def walk(node: Any, file: str) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                found[(file, node["pattern"])] = None
            for value in node.values():
                walk(value, file)
        elif isinstance(node, list):
            for value in node:
                walk(value, file)

    for path in sorted(SCHEMAS_DIR.glob("*.json")):
        walk(json.loads(path.read_text(encoding="utf-8")), path.name)
    return list(found)


def show(value: Any, limit: int = 60) -> str:
    """A value for a message: its repr, cut short (a hostile value can be 200 KB)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def explain(error: ValidationError) -> list[tuple[str, str, str]]:
    """(json path, message, hint) for one schema error; the hint says what to write."""
    path, schema, instance, value = error.json_path, error.schema, error.instance, error.validator_value
    schema = schema if isinstance(schema, dict) else {}
    kind = error.validator
    if kind == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        return [(child_path(path, extra), f"unknown field {show(extra)}", did_you_mean(extra, allowed, "allowed fields"))
                for extra in sorted(k for k in instance if k not in allowed)]
    if kind == "required":
        missing = error.message.split("'")[1]
        about = schema.get("properties", {}).get(missing, {}).get("description", "")
        return [(path, f"missing required field {missing!r}", f"add {missing}: ..." + (f" ({about})" if about else ""))]
    if kind == "type":
        return [(path, *_type_error(value, instance))]
    if kind in ("enum", "const"):
        options = [str(v) for v in (value if kind == "enum" else [value])]
        return [(path, f"{show(instance)} is not allowed", did_you_mean(str(instance), options, "use one of"))]
    if kind == "pattern":
        what, hint = PATTERNS.get(value, ("in the expected form", f"match {value}"))
        if "\n" in str(instance):
            hint = "remove the line break; " + hint
        return [(path, f"{show(instance)} is not {what}", hint)]
    if kind in ("maxLength", "minLength"):
        most = kind == "maxLength"
        return [(path, f"{show(instance)} is {len(instance)} characters, {'at most' if most else 'at least'} {value} "
                       "allowed", f"{'shorten' if most else 'lengthen'} it to {value} characters"
                       f"{' or fewer' if most else ' or more'}")]
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        bounds = _bounds(schema)
        return [(path, f"{show(instance)} is out of range: {bounds}", f"write a number {bounds}")]
    if kind in ("maxItems", "minItems", "maxProperties", "minProperties"):
        return [(path, _count_message(kind, value, instance), _count_hint(kind, value, schema))]
    if kind == "uniqueItems":
        seen, repeats = [], []
        for item in instance:
            (repeats if item in seen else seen).append(item)
        return [(path, f"{show(repeats[0])} appears more than once", "list each value once")]
    return [(path, error.message, schema.get("description", ""))]


def did_you_mean(word: str, options: list[str], label: str, list_up_to: int = 10) -> str:
    """The one option clearly closest to `word` (with all of them when at most `list_up_to`), else all the options."""
    listed = f"{label}: " + ", ".join(options)
    close = difflib.get_close_matches(word, options, n=2, cutoff=0.6)
    ratios = [difflib.SequenceMatcher(None, word, c).ratio() for c in close]
    if close and (len(close) == 1 or ratios[0] > ratios[1]):
        return f"did you mean {close[0]!r}?" + (f" {listed}" if len(options) <= list_up_to else "")
    return listed


def _type_error(expected: str | list[str], instance: Any) -> tuple[str, str]:
    kinds = expected if isinstance(expected, list) else [expected]
    want = " or ".join(_TYPE_WORDS.get(k, k) for k in kinds)
    got = _describe(instance)
    message = f"expected {want}, got {got}"
    if isinstance(instance, str) and {"number", "integer"} & set(kinds):
        exponent = _YAML11_EXPONENT.fullmatch(instance.strip())
        if exponent:
            return message, (f"`{instance}` is a string in YAML 1.1 (an exponent needs a decimal point): "
                             f"write {exponent.group(1)}.0{exponent.group(2)}")
        if _number(instance) is not None:
            return message, f"remove the quotes: {instance.strip()}"
        return message, f"write {want}, e.g. {'8' if 'integer' in kinds else '0.5'}"
    if isinstance(instance, float) and "integer" in kinds:
        return message, f"write a whole number, e.g. {math.floor(instance) if math.isfinite(instance) else 8}"
    if "string" in kinds and isinstance(instance, (bool, int, float)):
        return message, "quote it, e.g. \"" + (str(instance).lower() if isinstance(instance, bool) else str(instance)) + "\""
    if "array" in kinds:
        return message, "write a list: [a, b] or one '- item' per line"
    if "object" in kinds:
        return message, "write a mapping: 'key: value' lines indented under the field"
    return message, f"write {want}"


def _describe(instance: Any) -> str:
    if isinstance(instance, bool):
        return f"the boolean {str(instance).lower()}"
    if isinstance(instance, (int, float)):
        return f"the number {show(instance)}"
    if isinstance(instance, str):
        return f"the string {show(instance)}"
    if isinstance(instance, list):
        return "a list"
    if isinstance(instance, dict):
        return "a mapping"
    return "null" if instance is None else type(instance).__name__


def _number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _bounds(schema: dict[str, Any]) -> str:
    low = (f"above {schema['exclusiveMinimum']}" if "exclusiveMinimum" in schema
           else f"from {schema['minimum']}" if "minimum" in schema else "")
    high = (f"below {schema['exclusiveMaximum']}" if "exclusiveMaximum" in schema
            else f"at most {schema['maximum']}" if "maximum" in schema else "")
    if low.startswith("from") and high.startswith("at most"):
        return f"from {schema['minimum']} to {schema['maximum']}"
    return " and ".join(part for part in (low, high) if part)


def _count_message(kind: str, limit: int, instance: Any) -> str:
    what = "items" if kind.endswith("Items") else "fields"
    return f"{len(instance)} {what}, {'at most' if kind.startswith('max') else 'at least'} {limit} allowed"


def _count_hint(kind: str, limit: int, schema: dict[str, Any]) -> str:
    if kind.endswith("Properties") and schema.get("properties"):
        options = ", ".join(schema["properties"])
        return f"keep {'at most' if kind.startswith('max') else 'at least'} {limit} of: {options}"
    return f"{'remove' if kind.startswith('max') else 'add'} items to have {'at most' if kind.startswith('max') else 'at least'} {limit}"
