"""Files on disk -> validated Environments: discovery, `extends` layering, tier defaults, error locations."""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from .discover import PARTIAL_RE, SUFFIX, Discovery, did_you_mean
from .errors import InputError, Location, PathKey, Problem
from .fsutil import display_path
from .models.environment import Environment
from .models.settings import ACKNOWLEDGEABLE_RULES, ALLOWABLE_RULES, TIERS, EnvironmentSpec
from .models.tiers import TIER_DEFAULTS
from .policy import ACKNOWLEDGEABLE, ALLOWABLE
from .secrets import find_inline_secrets
from .yamlsource import Document, read_file

# Keys that exclude each other: a layer that sets one removes the others it inherits.
# A `*` stands for any key (a receiver's name).
EXCLUSIVE: dict[PathKey, frozenset[str]] = {
    ("disruption_budget",): frozenset({"min_available", "max_unavailable"}),
    ("alertmanager", "receivers", "*", "pagerduty"): frozenset({"routing_key_file", "routing_key_secret"}),
    ("alertmanager", "receivers", "*", "slack"): frozenset({"api_url_file", "api_url_secret"}),
}


def _exclusive(path: PathKey) -> frozenset[str] | None:
    for pattern, group in EXCLUSIVE.items():
        if len(pattern) == len(path) and all(p in ("*", q) for p, q in zip(pattern, path, strict=True)):
            return group
    return None


@dataclass
class Layer:
    """Settings data plus where each value came from."""

    data: dict[str, Any]
    locations: dict[PathKey, Location] = field(default_factory=dict)
    number_text: dict[PathKey, str] = field(default_factory=dict)


def merge(base: Layer, over: Layer) -> Layer:
    """Deep-merge `over` onto `base`: mappings merge, lists and scalars replace. Inputs are not modified."""
    replaced: set[PathKey] = set()

    def merge_maps(low: dict[str, Any], high: dict[str, Any], path: PathKey) -> dict[str, Any]:
        out = dict(low)
        group = _exclusive(path)
        if group:
            for key in group & high.keys():
                for other in group - {key}:
                    if other in out and other not in high:
                        del out[other]
                        replaced.add(path + (other,))
        for key, value in high.items():
            child = path + (key,)
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merge_maps(out[key], value, child)
            else:
                out[key] = value
                replaced.add(child)
        return out

    data = merge_maps(base.data, over.data, ())

    def keep(path: PathKey) -> bool:
        for i in range(1, len(path) + 1):
            if path[:i] in replaced:
                return False
        return True

    locations = {p: loc for p, loc in base.locations.items() if keep(p)} if replaced else dict(base.locations)
    locations.update(over.locations)
    number_text = {p: t for p, t in base.number_text.items() if keep(p)}
    number_text.update(over.number_text)
    return Layer(data, locations, number_text)


@cache
def _tier_layer(tier: str) -> Layer:
    """The tier's defaults as a layer, built once: merge() never modifies its inputs."""
    return _origin_layer(TIER_DEFAULTS[tier], f"tier default ({tier})")


def _origin_layer(data: dict[str, Any], origin: str) -> Layer:
    locations: dict[PathKey, Location] = {}

    def walk(value: Any, path: PathKey) -> None:
        if path:
            locations[path] = Location(origin=origin)
        if isinstance(value, dict):
            for key, child in value.items():
                walk(child, path + (key,))

    walk(data, ())
    return Layer(data, locations)


# What the models check against but cannot import: the rule registry imports them.
_VALIDATION_CONTEXT = {ALLOWABLE_RULES: ALLOWABLE, ACKNOWLEDGEABLE_RULES: ACKNOWLEDGEABLE}


class Loader(Discovery):
    """Loads environments from one directory, reading each partial once however many files extend it."""

    def __init__(self, environments_dir: Path) -> None:
        self.dir = Path(environments_dir)
        self._documents: dict[Path, Document] = {}
        self._resolved: dict[str, tuple[Layer, list[tuple[str, Location]]]] = {}
        # How generated headers name the directory: its real name, so `--environments .` run from inside
        # it writes the same bytes as `--environments environments` from the repository root.
        self.label = self.dir.resolve().name or self.dir.name
        self._secrets: dict[str, list[Problem]] = {}  # per file, scanned once however many environments extend it
        self._display_names: dict[str, str] = {}
        self._orders: dict[str, list[str]] = {}  # an environment's files in merge order (partials, then its own)

    # --- loading ---------------------------------------------------------------------------------
    def _display(self, stem: str) -> str:
        """display_path of a file here, worked out once per file rather than once per file extending it."""
        name = self._display_names.get(stem)
        if name is None:
            name = self._display_names[stem] = display_path(self.dir / f"{stem}{SUFFIX}")
        return name

    def _document(self, path: Path) -> Document:
        doc = self._documents.get(path)
        if doc is None:
            doc = self._documents[path] = read_file(path, display_path(path))
            # Every file read, scanned whole, once: a secret is a leak even where a later layer overrides it.
            self._secrets[doc.display] = find_inline_secrets(doc)
        return doc

    def _own_layer(self, stem: str, chain: tuple[str, ...], referrer: Location | None) -> tuple[Layer, list[tuple[str, Location]]]:
        """One file's own settings (without what it extends) and the partials it names, with where it names them."""
        if stem in self._resolved:
            return self._resolved[stem]
        path = self.dir / f"{stem}{SUFFIX}"
        if chain and not path.is_file():
            via = " -> ".join(chain + (stem,))
            raise InputError.single(f"partial {stem!r} not found: no file {display_path(path)} (chain: {via})", referrer, "extends")
        doc = self._document(path)
        data = dict(doc.data)
        extends = data.pop("extends", None)
        where = doc.locations.get(("extends",), Location(doc.display, 1, 1))
        if extends is None:
            names: list[str] = []
        elif isinstance(extends, str):
            names = [extends]
        elif isinstance(extends, list) and all(isinstance(p, str) for p in extends):
            names = extends
        else:
            raise InputError.single("extends: expected a partial name or a list of them, e.g. `extends: _base`", where, "extends")
        parents = []
        for i, parent in enumerate(names):
            loc = doc.locations.get(("extends", i), where) if isinstance(extends, list) else where
            if not PARTIAL_RE.fullmatch(parent):
                raise InputError.single(
                    f"{parent!r} is not a partial name: partials are `_<name>` (file {self.label}/_<name>.yaml)", loc, "extends")
            parents.append((parent, loc))
        own = Layer(data, {p: loc for p, loc in doc.locations.items() if p[:1] != ("extends",)}, doc.number_text)
        self._resolved[stem] = (own, parents)
        return own, parents

    def _merge_order(self, stem: str, chain: tuple[str, ...], referrer: Location | None,
                     order: list[str]) -> None:
        """Depth first, parents before the file, each partial once: in `extends: [_a, _b]` where both extend
        `_base`, the order is _base, _a, _b, so _b re-extending _base cannot bury _a's overrides."""
        if stem in chain:
            cycle = " -> ".join(chain[chain.index(stem):] + (stem,))
            raise InputError.single(f"extends cycle: {cycle}", referrer, "extends")
        if stem in order:
            return
        _own, parents = self._own_layer(stem, chain, referrer)
        for parent, loc in parents:
            self._merge_order(parent, chain + (stem,), loc, order)
        order.append(stem)

    def _layers(self, stem: str) -> tuple[Layer, tuple[str, ...]]:
        """The file `stem` merged over everything it extends, and the partials involved (in merge order)."""
        order: list[str] = []
        self._merge_order(stem, (), None, order)
        self._orders[stem] = order
        merged: Layer | None = None
        for name in order:
            own = self._resolved[name][0]
            merged = own if merged is None else merge(merged, own)
        assert merged is not None
        return merged, tuple(self._display(name) for name in order[:-1])

    def load(self, name: str) -> Environment:
        path = self.dir / f"{name}{SUFFIX}"
        layer, partials = self._layers(name)
        display = display_path(path)
        secrets = [p for file in sorted({display, *partials}) for p in self._secrets.get(file, [])]
        tier = layer.data.get("tier")
        if tier not in TIERS:
            loc = layer.locations.get(("tier",), Location(display, 1, 1))
            if tier is None:
                raise InputError(secrets + [Problem(loc, "tier", "required (development, staging or production)")])
            raise InputError(secrets + [Problem(
                loc, "tier", f"{tier!r} is not a tier; use development, staging or production{did_you_mean(tier, TIERS)}")])
        layer = merge(_tier_layer(tier), layer)
        try:
            spec = EnvironmentSpec.model_validate(layer.data, context=_VALIDATION_CONTEXT)
        except ValidationError as exc:
            parents = self._resolved[name][1]
            raise InputError(secrets + problems_from_validation(exc, layer, display, parents[0][1] if parents else None)) from None
        if secrets:
            raise InputError(secrets)
        source = f"{self.label}/{name}{SUFFIX}"
        header_partials = tuple(f"{self.label}/{Path(p).name}" for p in partials)
        return Environment(name=name, source=source, partials=header_partials, spec=spec, locations=layer.locations)

    def inputs(self, name: str) -> tuple[tuple[str, bytes], ...]:
        """The files environment `name` was loaded from (after load), with the digests of the bytes read."""
        return tuple((f"{stem}{SUFFIX}", self._documents[self.dir / f"{stem}{SUFFIX}"].digest)
                     for stem in self._orders[name])

    def forget(self, name: str) -> None:
        """Drop what was read for environment `name` alone, keeping the partials others share: a process that
        works through a fleet then holds one environment's file at a time, not every one it loaded."""
        doc = self._documents.pop(self.dir / f"{name}{SUFFIX}", None)
        if doc is not None:
            self._secrets.pop(doc.display, None)
        self._resolved.pop(name, None)
        self._orders.pop(name, None)
        self._display_names.pop(name, None)

    def load_many(self, requested: Iterable[str] | None = None) -> list[Environment]:
        """Every requested environment, or an InputError listing the problems of all of them."""
        environments: list[Environment] = []
        problems: list[Problem] = []
        for name in self.select(requested):
            try:
                environments.append(self.load(name))
            except InputError as exc:
                problems.extend(p for p in exc.problems if p not in problems)
        if problems:
            raise InputError(problems)
        return environments


# --- pydantic errors -> problems with locations ------------------------------------------------------

_UNION_TAG = re.compile(r"^(int|str|float|bool|none|constrained-[a-z]+|function-[a-z]+|.*\[.*)$")


def _clean_loc(loc: tuple[Any, ...], error_type: str) -> PathKey:
    parts = list(loc)
    last = parts.pop() if error_type == "extra_forbidden" and parts else None
    cleaned = [p for p in parts if not (isinstance(p, str) and _UNION_TAG.match(p) and p not in _FIELD_NAMES)]
    if last is not None:
        cleaned.append(last)
    return tuple(cleaned)


def _all_field_names(model: type[BaseModel], seen: set[type]) -> set[str]:
    names: set[str] = set()
    if model in seen:
        return names
    seen.add(model)
    for name, info in model.model_fields.items():
        names.add(info.alias or name)
        for sub in _models_in(info.annotation):
            names |= _all_field_names(sub, seen)
    return names


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found = []
    for arg in typing.get_args(annotation):
        found.extend(_models_in(arg))
    return found


def _model_at(path: PathKey) -> type[BaseModel] | None:
    """The settings model that holds the keys at `path` (for 'did you mean')."""
    current: Any = EnvironmentSpec
    for part in path:
        if isinstance(current, type) and issubclass(current, BaseModel):
            by_alias = {(f.alias or n): f for n, f in current.model_fields.items()}
            info = by_alias.get(part)
            if info is None:
                return None
            current = info.annotation
        else:
            origin = typing.get_origin(current)
            if origin in (typing.Union, types.UnionType):
                models = _models_in(current)
                if not models:
                    return None
                current = models[0]
                continue
            args = typing.get_args(current)
            if not args:
                return None
            current = args[-1]
        while typing.get_origin(current) in (typing.Union, types.UnionType, list, dict):
            models = _models_in(current)
            if len(models) == 1 and typing.get_origin(current) in (typing.Union, types.UnionType):
                current = models[0]
            else:
                break
    models = _models_in(current)
    return models[0] if len(models) == 1 else None


_FIELD_NAMES = _all_field_names(EnvironmentSpec, set())


def _form_at(path: PathKey) -> str | None:
    """The words a pattern-checked setting's field gives for its form (settings.form), for the field at `path` or,
    for an item of a list or mapping, the field holding it."""
    for end in range(len(path), 0, -1):
        name = path[end - 1]
        if not isinstance(name, str):
            continue
        model = _model_at(path[:end - 1])
        info = next((f for n, f in model.model_fields.items() if (f.alias or n) == name), None) if model else None
        if info is not None:
            extra = info.json_schema_extra
            return extra.get("x-form") if isinstance(extra, dict) else None  # type: ignore[return-value]
    return None


def _message(err: ErrorDetails, path: PathKey, layer: Layer) -> str:
    kind = err["type"]
    value = err.get("input")
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        model = _model_at(path[:-1])
        options = [(f.alias or n) for n, f in model.model_fields.items()] if model else []
        return f"unknown key {path[-1]!r}" + did_you_mean(str(path[-1]), options)
    if kind == "string_type" and isinstance(value, (int, float)) and not isinstance(value, bool):
        written = layer.number_text.get(path, str(value))
        return (f"YAML read {written} as the number {value!r}, but this setting is text; quote it: \"{written}\"")
    if kind.startswith("value_error") or kind == "assertion_error":
        return str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    message = str(err["msg"])
    if kind == "string_pattern_mismatch":
        form = _form_at(path)
        message = f"expected {form}" if form else (
            "does not have the expected form" + (f" ({err['ctx']['pattern']})" if "ctx" in err else ""))
    if kind == "literal_error" and isinstance(value, str):
        expected = re.findall(r"'([^']*)'", str(err.get("ctx", {}).get("expected", "")))
        message += did_you_mean(value, expected)
    if value is not None and not isinstance(value, (dict, list)):
        message += f" (got {value!r})"
    return message


def _value_at(data: Any, path: PathKey) -> Any:
    for part in path:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return None
    return data


def _rule_problem(err: ErrorDetails, path: PathKey, layer: Layer, display: str) -> Problem:
    """A rule the models check (raised with `rule_error`): at the offending value, or at a related one when the
    offending value is a default (the receiver map someone edited, not the default route), naming the others."""
    ctx = err["ctx"]
    at = path + tuple(ctx["at"])
    candidates = [at] + [path + tuple(rel) for rel in ctx["related"]]
    written = [c for c in candidates if c in layer.locations and layer.locations[c].file is not None]
    primary = written[0] if written else at
    message = ctx["message"]
    location = next((layer.locations[p] for p in (primary[:i] for i in range(len(primary), 0, -1)) if p in layer.locations), None)
    if primary != at:
        message += f" ({'.'.join(str(p) for p in at)} is {layer.locations[at].origin if at in layer.locations else 'the default'})"
    if location is None or location.file is None:
        if location is not None:
            message += f" (value from {location.origin})"
        location = Location(display)
    related = []
    for rel_path in candidates[1:]:
        rel_loc = layer.locations.get(rel_path)
        if rel_path != primary and rel_loc is not None and rel_loc.file is not None:
            related.append(rel_loc)
            shown = _value_at(layer.data, rel_path)
            value = "" if isinstance(shown, (dict, list)) or shown is None else f" {shown!r}"
            message += f"; {'.'.join(str(p) for p in rel_path)}{value} set at {rel_loc}"
    return Problem(location, ".".join(str(p) for p in primary), message, rule=ctx["rule"], related=tuple(related))


def _missing_problem(path: PathKey, layer: Layer, display: str, extends_at: Location | None) -> Problem:
    """A required key no file sets, reported in the environment's own file, which is the one to fix (a partial is
    shared): at the enclosing section the file writes; else at its `extends:`, naming the partial that holds the
    section; else at the file's start."""
    dotted = ".".join(str(p) for p in path)
    for end in range(len(path) - 1, 0, -1):
        loc = layer.locations.get(path[:end])
        if loc is None or loc.file is None:
            continue
        if loc.file == display:
            return Problem(loc, dotted, "required")
        section = ".".join(str(p) for p in path[:end])
        return Problem(extends_at or Location(display, 1, 1), dotted,
                       f"required: {section} comes from {loc}, which this file extends, and it does not set "
                       f"{'.'.join(str(p) for p in path[end:])}: set {dotted} in this file")
    return Problem(Location(display, 1, 1), dotted, "required")


def problems_from_validation(exc: ValidationError, layer: Layer, display: str,
                             extends_at: Location | None = None) -> list[Problem]:
    """One problem per setting. extends_at: where the environment's file names its first partial."""
    grouped: dict[PathKey, list[str]] = {}
    missing: list[Problem] = []
    rule_problems: list[Problem] = []
    for err in exc.errors(include_url=False):
        path = _clean_loc(err["loc"], err["type"])
        if err["type"] == "policy_rule":
            rule_problems.append(_rule_problem(err, path, layer, display))
            continue
        if err["type"] == "missing":
            problem = _missing_problem(path, layer, display, extends_at)
            if problem not in missing:
                missing.append(problem)
            continue
        message = _message(err, path, layer)
        bucket = grouped.setdefault(path, [])
        if message not in bucket:
            bucket.append(message)
    problems = []
    for path, messages in grouped.items():
        location = None
        probe = path
        while probe:
            if probe in layer.locations:
                location = layer.locations[probe]
                break
            probe = probe[:-1]
        message = " or ".join(messages) if len(messages) > 1 else messages[0]
        if location is None:
            location = Location(display, 1, 1)
        elif location.file is None:
            # The bad value is a default: point at the environment file, say where the value came from.
            message += f" (value from {location.origin})"
            location = Location(display)
        problems.append(Problem(location, ".".join(str(p) for p in path), message))
    return problems + missing + rule_problems
