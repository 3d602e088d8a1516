"""infragen.artifact_diff: changes inside a generated file named by YAML path, nginx directive or env key."""

from __future__ import annotations

from infragen.artifact_diff import Entry, entries


def test_yaml_paths_and_named_list_items() -> None:
    old = b"# header\nspec:\n  maxReplicas: 10\ngroups:\n  - name: g\n    rules:\n      - alert: A\n        for: 5m\n      - alert: B\n        for: 1m\n"
    new = b"# other header\nspec:\n  maxReplicas: 12\ngroups:\n  - name: g\n    rules:\n      - alert: B\n        for: 2m\n      - alert: C\n        for: 1m\n"
    assert entries("yaml", old, new) == [
        Entry("spec.maxReplicas", "10", "12"),
        Entry("groups[g].rules[B].for", "1m", "2m"),
        Entry("groups[g].rules[C]", None, '{"alert": "C", "for": "1m"}'),
        Entry("groups[g].rules[A]", '{"alert": "A", "for": "5m"}', None),
    ]


def test_yaml_comment_only_change_has_no_entries() -> None:
    assert entries("yaml", b"# a\nx: 1\n", b"# b\nx: 1\n") == []


def test_nginx_directives_by_block_and_repeated_ones_by_first_argument() -> None:
    old = b"upstream u {\n    server 10.0.0.1:80 max_fails=3;\n    server 10.0.0.2:80 max_fails=3;\n    keepalive 32;\n}\nproxy_set_header Host $host;\n"
    new = b"upstream u {\n    server 10.0.0.1:80 max_fails=5;\n    keepalive 32; # comment\n}\nproxy_set_header Host \"$host\";\n"
    assert entries("nginx", old, new) == [
        Entry("upstream u > server 10.0.0.1:80", "max_fails=3", "max_fails=5"),
        Entry("proxy_set_header Host", "$host", '"$host"'),
        Entry("upstream u > server 10.0.0.2:80", "max_fails=3", None),
    ]


def test_env_keys() -> None:
    assert entries("env", b"# h\nA=1\nB=2\n", b"# h2\nA=1\nB=3\nC=4\n") == [Entry("B", "2", "3"), Entry("C", None, "4")]


def test_unparseable_falls_back_to_lines() -> None:
    assert entries("nginx", b"a {\n", b"a {\nb;\n") == [Entry("after line 1", None, "b;")]


def test_long_values_show_the_difference() -> None:
    prefix = "sum(rate(http_requests_total{job=\"fraud-api\",namespace=\"x\"}[5m])) / something_long"
    [entry] = entries("yaml", f"expr: '{prefix} > 0.05'\n".encode(), f"expr: '{prefix} > 0.08'\n".encode())
    assert entry.old.endswith("> 0.05") and entry.new.endswith("> 0.08")
    assert entry.old.startswith("…") and len(entry.old) < 60
