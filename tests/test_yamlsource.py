"""infragen.yamlsource on its own: YAML text in, plain data with the place of every value out, and the YAML
traps refused with the line and column a user needs (the CLI's messages in docs/bad-input.md rest on these)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from infragen.errors import InputError, Location
from infragen.yamlsource import MAX_NODES, parse_text, read_file

F = "environments/x.yaml"


def parsed(text: str):
    return parse_text(text.encode("utf-8"), F)


def refused(text: str | bytes) -> tuple[Location | None, str]:
    raw = text.encode("utf-8") if isinstance(text, str) else text
    with pytest.raises(InputError) as info:
        parse_text(raw, F)
    [problem] = info.value.problems
    return problem.location, problem.message


def test_scalars_are_located_at_their_value_containers_at_their_key_list_items_at_the_item() -> None:
    doc = parsed("tier: production\n"
                 "autoscaling:\n"
                 "  min_replicas:   3\n"
                 "load_balancing:\n"
                 "  servers:\n"
                 "    - 10.0.0.1:8080\n"
                 "    - {address: '10.0.0.2:8080', weight: 2}\n")
    assert doc.data == {"tier": "production", "autoscaling": {"min_replicas": 3},
                        "load_balancing": {"servers": ["10.0.0.1:8080", {"address": "10.0.0.2:8080", "weight": 2}]}}
    at = {path: (loc.line, loc.column) for path, loc in doc.locations.items()}
    assert at[("tier",)] == (1, 7)
    assert at[("autoscaling",)] == (2, 1)  # the key: where a reader looks for the section
    assert at[("autoscaling", "min_replicas")] == (3, 19)  # the value: where the bad text is
    assert at[("load_balancing", "servers", 0)] == (6, 7)
    assert at[("load_balancing", "servers", 1, "weight")] == (7, 42)
    assert all(loc.file == F for loc in doc.locations.values())


def test_numbers_keep_the_text_the_user_wrote() -> None:
    doc = parsed("a: 1.30\nb: 12\nc: '1.30'\n")
    assert doc.data == {"a": 1.3, "b": 12, "c": "1.30"}
    assert doc.number_text == {("a",): "1.30", ("b",): "12"}  # "1.30 was read as 1.3" is said in the user's words


def test_yaml_1_2_scalars_are_read_as_written() -> None:
    doc = parsed("t: true\nf: False\nn: null\ne:\nd: 2026-01-01\ns: 'on'\nneg: -5\nx: 1.5e+3\ny: 1.5e3\n")
    assert doc.data == {"t": True, "f": False, "n": None, "e": None, "d": "2026-01-01", "s": "on", "neg": -5,
                        "x": 1500.0, "y": "1.5e3"}  # YAML 1.1's float needs the exponent's sign: the model judges text


@pytest.mark.parametrize(("text", "words"), [
    ("a: on\n", "read as a boolean by YAML 1.1"),
    ("a: yes\n", "read as a boolean by YAML 1.1"),
    ("a: 010\n", "ambiguous number"),
    ("a: 0x1F\n", "ambiguous number"),
    ("a: 1_000\n", "ambiguous number"),
    ("a: 1:30\n", "ambiguous number"),
    ("a: .inf\n", "not a finite decimal number"),
    ("a: .nan\n", "not a finite decimal number"),
    ("a: 1234567890123456789\n", "at most 18 digits"),
])
def test_yaml_1_1_traps_are_refused_at_the_value_with_the_fix(text: str, words: str) -> None:
    location, message = refused(text)
    assert location == Location(F, 1, 4)
    assert words in message
    assert "quote it" in message or "at most 18 digits" in message  # the fix: say what you mean


def test_a_duplicate_key_names_both_lines_and_the_dotted_key() -> None:
    with pytest.raises(InputError) as info:
        parse_text(b"service:\n  name: a\n  port: 1\n  name: b\n", F)
    [problem] = info.value.problems
    assert (problem.location, problem.field) == (Location(F, 4, 3), "service.name")
    assert "first set on line 2" in problem.message


@pytest.mark.parametrize(("text", "where", "words"), [
    ("base: &b {a: 1}\nother:\n  <<: *b\n", (3, 3), "merge keys (<<) are not supported; use `extends:`"),
    ("a: !!python/name:os.system x\n", (1, 4), "YAML type !!python/name:os.system is not supported"),
    ("a: !custom x\n", (1, 4), "custom YAML tag '!custom' is not supported"),
    ("a: !!set {x: null}\n", (1, 4), "on a mapping is not supported"),
    ("a: 1\n---\nb: 2\n", (2, 1), "more than one YAML document"),
    ("- a\n- b\n", (1, 1), "not a list"),
    ("just text\n", (1, 1), "not a single value"),
    ("# only a comment\n", (1, 1), "file is empty"),
    ("a:\n\t- b\n", (2, 1), "tab used for indentation"),
    ("a: {b: 1\n", (2, 1), "invalid YAML"),
    ("? [a, b]\n: c\n", (1, 3), "a mapping key must be a plain name"),
])
def test_unsupported_yaml_is_refused_where_it_is(text: str, where: tuple[int, int], words: str) -> None:
    location, message = refused(text)
    assert location is not None and (location.line, location.column) == where, (location, message)
    assert words in message


@pytest.mark.parametrize(("raw", "where", "words"), [
    (b"\xef\xbb\xbfa: 1\n", (1, 1), "byte-order mark"),
    (b"a: 1\nb: caf\xe9\n", (2, 7), "not valid UTF-8 (byte 0xe9)"),
    (b"a: 1\nb: \x00\n", (2, 1), "NUL byte"),
    (b"a: 1\nb: x\x1by\n", (2, 5), "control character 0x1b"),
])
def test_bytes_that_are_not_a_text_file_are_refused_at_the_byte(raw: bytes, where: tuple[int, int], words: str) -> None:
    location, message = refused(raw)
    assert location is not None and (location.line, location.column) == where, (location, message)
    assert words in message


def test_small_anchors_expand_but_an_alias_bomb_stops_at_the_node_budget() -> None:
    assert parsed("a: &x [1, 2]\nb: *x\n").data == {"a": [1, 2], "b": [1, 2]}
    bomb = "a: &a [1,1,1,1,1,1,1,1,1]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(6))
    location, message = refused(bomb)
    assert f"more than {MAX_NODES} values" in message and location == Location(F, 1, 4)


def test_deep_nesting_is_refused_before_the_composer_can_crash() -> None:
    location, message = refused("a: " + "[" * 5000 + "]" * 5000 + "\n")
    assert "nesting deeper than" in message and location is not None and location.line == 1


def test_read_file_reports_the_file_itself_and_digests_what_it_read(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_bytes(b"a: 1\n")
    doc = read_file(path, F)
    assert doc.data == {"a": 1} and len(doc.digest) > 0
    path.write_bytes(b"a: 2\n")
    assert read_file(path, F).digest != doc.digest  # the result cache keys on it
    with pytest.raises(InputError, match="file not found"):
        read_file(tmp_path / "missing.yaml", F)
    with pytest.raises(InputError, match="is a directory"):
        read_file(tmp_path, F)
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):  # and it does not hang waiting for a writer
        read_file(fifo, F)
