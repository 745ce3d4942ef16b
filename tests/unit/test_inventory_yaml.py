"""The inventory's YAML and file: every class of mistake is one line naming the file and the line.

YAML 1.1 surprises refused, keys that are not names refused, quotes reported where they open, aliases
bounded, the merge key accepted; directories, links, sizes and encodings named for what they are.
"""

from __future__ import annotations

import os
import re

import pytest
from broken_inventory import edited, lab_text, line_of, one_line_error, write

from plugins.inventory import load_inventory

pytestmark = pytest.mark.unit


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Work in tmp_path, so messages name the file `inv.yml` as a user in its directory would see it."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _line(text: str, fragment: str) -> str:
    return f"line {line_of(text, fragment)}, "


# (id, text, fragments the one line holds); each text is the lab inventory with one mistake
SURPRISES = [
    ("octal-vmid", edited("vmid: 200", "vmid: 0200"), "vmid: 0200",
     ["0200 is a zero-padded number, which YAML 1.1 reads as octal 128", "expected 200"]),
    ("zero-padded-not-octal", edited("vmid: 200", "vmid: 0900"), "vmid: 0900",
     ["0900 is a zero-padded number (expected 900"]),
    ("octal-prefix-length", edited("prefix_length: 24", "prefix_length: 024"), "prefix_length: 024",
     ["octal 20", "expected 24"]),
    ("base-60-port", edited("port: 8006", "port: 80:06"), "port: 80:06", ["80:06 is read as a base-60 number"]),
    ("yes", edited("protected: true", "protected: yes"), "protected: yes",
     ["'yes' is read as a boolean by YAML 1.1", "expected true or false; quote it for text"]),
    ("on", edited("protected: true", "protected: on"), "protected: on", ["'on' is read as a boolean"]),
    ("No", edited("rollback: false", "rollback: No"), "rollback: No", ["'No' is read as a boolean"]),
    ("on-as-key", edited("environment: lab\n", "environment: lab\non: push\n"), "on: push",
     ["'on' is read as a boolean"]),
    ("binary", edited("cores: 1", "cores: 0b1"), "cores: 0b1", ["0b1 is a YAML 1.1 binary number"]),
    ("date", edited("environment: production", "environment: 2024-01-01"), "environment: 2024-01-01",
     ["2024-01-01 is read as a date"]),
    ("binary-tag", edited("bridge: labbr0", "bridge: !!binary bGFiYnIw"), "bridge: !!binary",
     ["tag !!binary is not used in an inventory"]),
    ("python-tag", edited("bridge: labbr0", "bridge: !!python/object:os.system {}"), "bridge: !!python",
     ["tag !!python/object:os.system is not used"]),
    ("local-tag", edited("bridge: labbr0", "bridge: !vault labbr0"), "bridge: !vault", ["tag !vault is not used"]),
    ("set-tag", edited("packages: [rsync, python3]", "packages: !!set {rsync, python3}"), "packages: !!set",
     ["tag !!set is not used"]),
    ("value-key", edited("bridge: labbr0", "bridge: ="), "bridge: =", ["'=' is a special YAML 1.1 value"]),
    ("list-key", edited("environment: lab\n", "environment: lab\n? [a, b]\n: 1\n"), "? [a, b]",
     ["a key is a list (expected a name"]),
    ("mapping-key", edited("environment: lab\n", "environment: lab\n{a: 1}: x\n"), "{a: 1}: x",
     ["a key is a mapping (expected a name"]),
    ("number-key", edited("  port: 8006\n", "  port: 8006\n  8007: x\n"), "  8007: x",
     ["key '8007' is a number (expected a name)"]),
    ("null-key", edited("  port: 8006\n", "  port: 8006\n  ~: x\n"), "  ~: x", ["key '~' is null"]),
    ("duplicate-host-key", edited("    hostname: proxy\n", "    hostname: proxy\n    vmid: 201\n"), "    vmid: 201",
     ["duplicate key 'vmid'"]),
    ("unclosed-double-quote", edited("bucket: homelab-tfstate", 'bucket: "homelab-tfstate'), 'bucket: "',
     ["a quoted value starts here and is never closed", "found the end of the file"]),
    ("unclosed-single-quote", edited("runs_on: self-hosted-proxmox", "runs_on: 'self-hosted-proxmox"), "runs_on: '",
     ["a quoted value starts here and is never closed"]),
    ("unclosed-quote-closed-lines-later", edited("node: homelab", 'node: "homelab').replace(
        "token_id: root@pam!lab", 'token_id: "root@pam!lab"'), 'node: "', ["starts here and runs onto line 8"]),
    ("unclosed-flow-list", edited("roles: [proxy]", "roles: [proxy"), "roles: [proxy",
     ["invalid YAML: a [ list opens here and is never closed", f"expected ',' or ']' at line {line_of(lab_text(), 'roles: [proxy]') + 1}"]),
    ("tab-indent", edited("  port: 8006", "\tport: 8006"), "\tport: 8006", ["invalid YAML"]),
    ("two-documents", edited("environment: lab", "environment: lab\n---\nenvironment: lab"), "---",
     ["expected a single document"]),
    ("undefined-alias", edited("cores: 1", "cores: *one"), "cores: *one", ["undefined alias"]),
]


@pytest.mark.parametrize(("text", "where", "expected"), [(t, w, e) for _, t, w, e in SURPRISES],
                         ids=[i for i, _, _, _ in SURPRISES])
def test_yaml_surprises_are_refused_naming_the_line(in_tmp, text, where, expected):
    """Each YAML mistake is one line: the file, the line where it is, what was expected."""
    message = one_line_error(write(in_tmp, text))
    assert message.startswith(f"inv.yml: {_line(text, where)}"), message
    for fragment in expected:
        assert fragment in message, message


BOMB = "".join(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n" for prev, name in zip("abcdefg", "bcdefgh"))
BOMBS = [
    ("billion-laughs", "a: &a [x, x, x, x, x, x, x, x, x]\n" + BOMB, "expand to more than 100000 values"),
    ("alias-into-itself", "environment: &e [*e]\n", "alias *e refers to the value that contains it"),
    ("deep-flow", "environment: " + "[" * 100_000 + "]" * 100_000 + "\n", "nest more than 20 deep"),
    ("deep-block", "environment:\n" + "".join(f"{' ' * i}- \n" for i in range(1, 30)), "nest more than 20 deep"),
]


@pytest.mark.parametrize(("text", "expected"), [(t, e) for _, t, e in BOMBS], ids=[i for i, _, _ in BOMBS])
def test_alias_bombs_and_deep_nesting_stop_at_a_bound(in_tmp, text, expected):
    """Aliases that expand to a huge value, or into themselves, and absurd nesting: one line, no crash."""
    message = one_line_error(write(in_tmp, text))
    assert message.startswith("inv.yml: line "), message
    assert expected in message, message


def test_the_merge_key_is_accepted(in_tmp):
    """`<<: *anchor` merges a mapping (top-level `x-` keys hold anchors); explicit keys win over merged ones."""
    text = edited("hosts:\n", "x-defaults: &defaults {memory: 2048, cores: 2}\nhosts:\n")
    text = text.replace("  - vmid: 201\n", "  - <<: *defaults\n    vmid: 201\n")
    # the utilities host's own memory goes (merged from the defaults), its cores stay explicit (1)
    text = re.sub(r"(hostname: utilities\n(?:    .*\n)*?)    memory: \d+[^\n]*\n", r"\1", text)
    text = re.sub(r"(hostname: utilities\n(?:    .*\n)*?    cores: )\d+", r"\g<1>1", text)
    inventory = load_inventory(write(in_tmp, text))
    utilities = inventory.host("utilities")
    assert (utilities.memory, utilities.cores) == (2048, 1)


def test_a_merge_of_a_list_is_one_line(in_tmp):
    """`<<:` of something that is not a mapping names the line (YAML's own rule)."""
    text = edited("    hostname: proxy\n", "    <<: [1, 2]\n    hostname: proxy\n")
    message = one_line_error(write(in_tmp, text))
    assert message.startswith(f"inv.yml: {_line(text, '<<: [1, 2]')}"), message


@pytest.mark.parametrize(("text", "value"), [('environment: "yes"', "yes"), ("environment: !!str 0200", "0200"),
                                             ("environment: 'on'", "on")])
def test_quoted_or_tagged_text_is_text(in_tmp, text, value):
    """What YAML 1.1 would misread is fine once quoted (or tagged !!str): it reaches the model as text."""
    assert load_inventory(write(in_tmp, edited("environment: lab", text))).environment == value


@pytest.mark.parametrize("value", ["true", "false", "True", "FALSE"])
def test_yaml_12_booleans_are_booleans(in_tmp, value):
    """true/false in any case YAML 1.2 allows are booleans."""
    inventory = load_inventory(write(in_tmp, edited("protected: true", f"protected: {value}")))
    assert inventory.host("proxy").protected is (value.lower() == "true")


# --- the file ----------------------------------------------------------------------------------


def test_a_directory_is_named(in_tmp):
    """A directory given as the inventory is one line saying so."""
    (in_tmp / "inventories").mkdir()
    expected = "inventories: is a directory (expected a YAML file, e.g. inventories/lab.yml)"
    assert one_line_error("inventories") == expected


def test_a_symlink_loop_is_named(in_tmp):
    """A link that leads back to itself is one line, not Python's RuntimeError."""
    os.symlink("b.yml", in_tmp / "a.yml")
    os.symlink("a.yml", in_tmp / "b.yml")
    assert one_line_error("a.yml").startswith("a.yml: is a symbolic link loop")


def test_a_dangling_link_names_its_target(in_tmp):
    """A link to nothing says where it points."""
    os.symlink("gone.yml", in_tmp / "inv.yml")
    assert one_line_error("inv.yml") == ("inv.yml: is a symbolic link to gone.yml, which does not exist "
                                         "(a dangling link; expected a YAML file)")


def test_a_link_to_a_good_file_loads(in_tmp):
    """A symlink to a valid inventory is that inventory."""
    os.symlink(write(in_tmp, lab_text(), "real.yml"), in_tmp / "inv.yml")
    assert load_inventory(in_tmp / "inv.yml").environment == "lab"


def test_a_fifo_is_refused_without_blocking(in_tmp):
    """A FIFO is named and never opened (opening one would wait for a writer forever)."""
    os.mkfifo(in_tmp / "inv.yml")
    assert "is not a regular file" in one_line_error("inv.yml")


def test_a_file_name_with_a_newline_stays_one_line(in_tmp):
    """The file name is part of every message: its control characters are escaped."""
    assert one_line_error("bad\nname.yml").startswith("bad\\nname.yml: no such inventory file")


def test_a_path_through_a_file_is_one_line(in_tmp):
    """`file.yml/x` fails as the OS says, in one line."""
    write(in_tmp, lab_text())
    assert one_line_error("inv.yml/lab.yml").startswith("inv.yml/lab.yml: cannot open: not a directory")


@pytest.mark.parametrize(("content", "expected"), [
    ("", "file is empty"),
    ("\n   \n\n", "file is empty"),
    ("---\n", "file is empty"),
    ("# nothing yet\n---\n", "file is empty"),
])
def test_empty_files_are_named(in_tmp, content, expected):
    """Empty, blank or document-markers-only files say the file is empty."""
    assert expected in one_line_error(write(in_tmp, content))


def test_a_huge_file_is_refused_before_parsing(in_tmp):
    """Past the size bound, the file is refused without being parsed."""
    path = write(in_tmp, "# padding\n" * 200_000)
    assert "is larger than 1024 KiB" in one_line_error(path)


@pytest.mark.parametrize(("data", "expected"), [
    (edited("bridge: labbr0", "bridge: labbr0 # café").encode("latin-1"),
     f"line {line_of(lab_text(), 'bridge: labbr0')}, column 23: byte 0xe9 is not UTF-8"),
    (lab_text().encode("utf-16"), "line 1: the file is UTF-16 (expected UTF-8"),
    (lab_text().encode("utf-32"), "line 1: the file is UTF-32"),
    (edited("node: homelab", "node: home\x00lab").encode(), "line 7, column 13: character U+0000 is not allowed"),
    (edited("node: homelab", "node: home\x07lab").encode(), "character U+0007 is not allowed"),
])
def test_wrong_encodings_name_the_line(in_tmp, data, expected):
    """Latin-1, UTF-16/32 and control characters: one line with the line (and column) of the first bad byte."""
    assert expected in one_line_error(write(in_tmp, data))


def test_a_utf8_bom_is_accepted(in_tmp):
    """Editors on Windows write a UTF-8 BOM: it is still UTF-8."""
    assert load_inventory(write(in_tmp, b"\xef\xbb\xbf" + lab_text().encode())).environment == "lab"
