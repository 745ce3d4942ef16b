"""YAML without its surprises: what YAML 1.1 would silently read another way is refused, naming the line.

Refused: `on/off/yes/no` (booleans in YAML 1.1, text in 1.2), zero-padded numbers (octal in 1.1: 0200 is 128),
base-60 numbers (80:06 is 4806), 0b binaries, dates, tags; a key given twice, a key that is a list, a mapping
or not text; a quoted value running onto another line (its closing quote is missing); nesting deeper than any
inventory needs; aliases that expand past a bound or into themselves. The merge key `<<:` is accepted.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from plugins.inventory.errors import InventoryError
from plugins.inventory.masking import shown

MAX_DEPTH = 20  # an inventory nests 7 deep (hosts → host → services → service → accepted); libyaml has no limit
MAX_VALUES = 100_000  # values after expanding aliases: far past any real inventory, far short of a bomb

# libyaml's parser when PyYAML has it: the pure-Python one is many times slower.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TAG = "tag:yaml.org,2002:"
_PLAIN_TAGS = {_TAG + name for name in ("str", "int", "float", "bool", "null", "seq", "map")}
_YAML11_BOOLEANS = {"yes", "no", "on", "off"}


class Refused(Exception):
    """A YAML construct the inventory refuses: where it is (a libyaml mark) and what was expected."""

    def __init__(self, mark: Any, message: str):
        super().__init__(message)
        self.mark = mark
        self.message = message


class StrictLoader(_SafeLoader):
    """SafeLoader whose mappings have unique text keys (YAML would keep the last of two silently)."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict:
        """The mapping, refusing duplicate keys and keys that are lists, mappings or not text."""
        seen: set[str] = set()
        for key_node, _ in node.value:
            if key_node.tag == _TAG + "merge":
                continue  # `<<: *defaults`: flatten_mapping merges it, explicit keys win
            if not isinstance(key_node, ScalarNode):
                kind = "list" if isinstance(key_node, SequenceNode) else "mapping"
                raise Refused(key_node.start_mark, f"a key is a {kind} (expected a name such as vmid)")
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str):
                raise Refused(key_node.start_mark, f"key {key_node.value!r} is {_kind(key)} (expected a name)")
            if key in seen:
                raise Refused(key_node.start_mark, f"duplicate key {shown(key)} (expected each key once)")
            seen.add(key)
        mapping = super().construct_mapping(node, deep=deep)
        stray = next((key for key in mapping if not isinstance(key, str)), None)
        if stray is not None:  # brought in by a merge
            raise Refused(node.start_mark, f"a merged key is {_kind(stray)} (expected a name)")
        return mapping


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "null" if value is None else f"a {type(value).__name__}"


def parse(source: str, text: str) -> Any:
    """The YAML document in text as plain data; InventoryError naming the line of the first problem."""
    try:
        _inspect_events(text)
        loader = StrictLoader(text)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except Refused as refused:
        raise InventoryError(source, [("", f"{_where(refused.mark)}{refused.message}")]) from None
    except yaml.MarkedYAMLError as error:
        raise InventoryError(source, [("", _syntax_error(error))]) from None
    except yaml.YAMLError as error:
        raise InventoryError(source, [("", f"invalid YAML: {' '.join(str(error).split())}")]) from None


def _where(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""


def _syntax_error(error: yaml.MarkedYAMLError) -> str:
    problem = " ".join(str(error.problem or error.context or "syntax error").split())
    problem = problem.replace("unexpected end of stream", "the end of the file")
    if error.context == "while scanning a quoted scalar" and error.context_mark:
        # libyaml stops at the end of the file; the mistake is where the quote opens
        return (f"{_where(error.context_mark)}a quoted value starts here and is never closed "
                f"(expected its closing quote; {problem})")
    mark = error.problem_mark or error.context_mark
    context = error.context or ""
    if context.startswith("while parsing a flow") and error.context_mark and mark:
        # an unclosed [ or {: libyaml notices at the next line, the mistake is where it opens
        what = "a [ list" if "sequence" in context else "a { mapping"
        return (f"{_where(error.context_mark)}invalid YAML: {what} opens here and is never closed "
                f"({problem} at line {mark.line + 1}, column {mark.column + 1})")
    opened = ""
    if context and error.context_mark and mark and error.context_mark.line != mark.line:
        opened = f" ({context} that starts at line {error.context_mark.line + 1})"
    return f"{_where(mark)}invalid YAML: {problem}{opened}"


def _inspect_events(text: str) -> None:
    """Walk the parser's events once: bound depth and alias expansion, refuse surprising scalars."""
    resolver = yaml.resolver.Resolver()
    frames: list[list] = [[0, None]]  # [values so far, anchor] per open collection; one for the stream
    sizes: dict[str, int] = {}  # expanded size of each finished anchor
    for event in yaml.parse(text, Loader=_SafeLoader):
        if isinstance(event, yaml.ScalarEvent):
            _check_scalar(event, resolver)
            size = 1
            if event.anchor:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.AliasEvent):
            if any(anchor == event.anchor for _, anchor in frames):
                raise Refused(event.start_mark, f"alias *{event.anchor} refers to the value that contains it "
                                                "(expected an alias to a value defined before it)")
            size = sizes.get(event.anchor, 1)  # an undefined alias: the composer names it
        elif isinstance(event, yaml.CollectionStartEvent):
            _check_tag(event, _TAG + ("seq" if isinstance(event, yaml.SequenceStartEvent) else "map"))
            frames.append([1, event.anchor])
            if len(frames) - 1 > MAX_DEPTH:
                raise Refused(event.start_mark, f"values nest more than {MAX_DEPTH} deep here "
                                                "(expected an inventory's few levels)")
            continue
        elif isinstance(event, yaml.CollectionEndEvent):
            size, anchor = frames.pop()
            if anchor:
                sizes[anchor] = size
        else:
            continue
        frames[-1][0] += size
        if sum(count for count, _ in frames) > MAX_VALUES:
            raise Refused(event.start_mark, f"anchors and aliases expand to more than {MAX_VALUES} values here "
                                            "(expected an inventory, not an alias bomb)")


def _check_tag(event: Any, implicit: str) -> None:
    tag = event.tag
    if tag and tag != "!" and tag != implicit and tag not in _PLAIN_TAGS:
        raise Refused(event.start_mark, f"tag {tag.replace(_TAG, '!!')} is not used in an inventory "
                                        "(expected plain YAML: text, numbers, true/false, lists, mappings)")


def _check_scalar(event: yaml.ScalarEvent, resolver: yaml.resolver.Resolver) -> None:
    value, mark = event.value, event.start_mark
    if event.style in ("'", '"'):
        if event.end_mark.line != mark.line:
            raise Refused(mark, f"a quoted value starts here and runs onto line {event.end_mark.line + 1} "
                                "(expected its closing quote on the same line: is it missing?)")
        return _check_tag(event, _TAG + "str")
    if event.style:  # block scalars (| >) are text
        return _check_tag(event, _TAG + "str")
    if event.tag and event.tag != "!":
        return _check_tag(event, _TAG + "str")  # `!!str 0200`: text, as the author said
    tag = resolver.resolve(ScalarNode, value, (True, False))
    if tag == _TAG + "merge":
        return  # the `<<` of a merge key
    digits = value.lstrip("+-")
    if value.lower() in _YAML11_BOOLEANS and tag == _TAG + "bool":
        raise Refused(mark, f"{value!r} is read as a boolean by YAML 1.1 but as text by YAML 1.2 "
                            "(expected true or false; quote it for text)")
    if len(digits) > 1 and digits[0] == "0" and digits.replace("_", "").isdigit():
        number = value.replace("_", "")
        octal = f", which YAML 1.1 reads as octal {int(number, 8)}" if tag == _TAG + "int" else ""
        raise Refused(mark, f"{value} is a zero-padded number{octal} (expected {int(number)} without leading "
                            "zeros, or quote it for text)")
    if tag in (_TAG + "int", _TAG + "float") and ":" in value:
        raise Refused(mark, f"{value} is read as a base-60 number by YAML 1.1 (expected a plain number; quote it "
                            "for text)")
    if tag == _TAG + "int" and digits[:2].lower() == "0b":
        raise Refused(mark, f"{value} is a YAML 1.1 binary number (expected a plain number; quote it for text)")
    if tag == _TAG + "timestamp":
        raise Refused(mark, f"{value} is read as a date by YAML (expected no dates in an inventory; quote it for "
                            "text)")
    if tag not in _PLAIN_TAGS:
        raise Refused(mark, f"{value!r} is a special YAML 1.1 value (expected plain text; quote it)")
