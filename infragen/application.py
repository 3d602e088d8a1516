"""`infragen verify --app DIR`: the application's own kustomization rendered with the environment's Component.

Kustomize merges the Deployment patch into the container named `health.container` (default `service.name`). When
the application's container is named otherwise, the strategic merge adds a second container with probes and no
image, which passes `kubectl kustomize` and every schema and fails only when applied; when its Deployment is named
otherwise the patch reaches nothing, silently. Rendering the real application is the only way to see either, so
this renders it (`kubectl kustomize`, offline): as it is when its kustomization already lists the Component,
otherwise through a wrapper kustomization that includes both. It then checks that the container the patch targets
exists and receives the probes, and every key of `app.env` from the Component's ConfigMap.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from .consumers import KUSTOMIZE_MIN, Status, kubectl_version, load_kubectl_output, run_tool
from .errors import InputError, Location
from .models.environment import Environment

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


def kustomization_of(app: Path) -> Path:
    for name in KUSTOMIZATION_FILES:
        if (app / name).is_file():
            return app / name
    raise InputError.single("no kustomization.yaml here: --app names the directory of the application's "
                            "kustomization", Location(str(app)))


def includes(app: Path, component: Path) -> bool:
    """Does the application's kustomization already list `component` under `components:`?"""
    import yaml

    try:
        data = yaml.safe_load(kustomization_of(app).read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        return False
    listed = data.get("components") or [] if isinstance(data, dict) else []
    return any(isinstance(c, str) and (app / c).resolve() == component.resolve() for c in listed)


def render(kubectl: str, app: Path, component: Path) -> tuple[int, str, str]:
    """(exit code, output, how it was rendered) of the application with the Component."""
    if includes(app, component):
        code, out = run_tool([kubectl, "kustomize", str(app)])
        return code, out, f"{app} (it lists the Component)"
    with tempfile.TemporaryDirectory(prefix="infragen-app-") as tmp:
        wrapper = Path(tmp)
        (wrapper / "kustomization.yaml").write_text(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            f"resources: [{os.path.relpath(app.resolve(), wrapper)}]\n"
            f"components: [{os.path.relpath(component.resolve(), wrapper)}]\n", encoding="utf-8")
        code, out = run_tool([kubectl, "kustomize", str(wrapper)])
    return code, out, f"{app} with the Component"


def _containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    return deployment.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []) or []


def rendered_deployment(env: Environment, documents: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((d for d in documents if d.get("kind") == "Deployment"
                 and d.get("metadata", {}).get("name") == env.service_name), None)


def judge(env: Environment, documents: list[dict[str, Any]]) -> tuple[Status, str]:
    """What the rendered application does with the patch: merged into the right container, or not."""
    deployment = rendered_deployment(env, documents)
    if deployment is None:
        names = sorted(d.get("metadata", {}).get("name", "?") for d in documents if d.get("kind") == "Deployment")
        return "failed", (f"no Deployment {env.service_name!r} in the application (Deployments: "
                          f"{', '.join(names) or 'none'}): the patch reaches nothing; name it service.name")
    containers = _containers(deployment)
    names = [c.get("name") for c in containers]
    target = next((c for c in containers if c.get("name") == env.container), None)
    if target is None or "image" not in target:
        others = [str(n) for n in names if n != env.container]
        fix = f"set health.container: {others[0]}" if len(others) == 1 else \
            "set health.container to the application's container"
        return "failed", (f"the patch adds a container {env.container!r} to Deployment {env.service_name} instead of "
                          f"merging into one (its containers: {', '.join(others) or 'none'}): {fix}")
    both = [e.get("name") for e in target.get("env", []) or [] if "value" in e and "valueFrom" in e]
    if both:  # the application sets an app.env key itself: the merge gives it a value and a valueFrom
        return "failed", (f"container {env.container!r} sets {', '.join(map(str, both))} in its own env, which app.env "
                          "also gives: Kubernetes refuses an env entry with both value and valueFrom; remove it from "
                          "the application's env (app.env owns it)")
    missing = [p for p in ("startupProbe", "livenessProbe", "readinessProbe") if p not in target]
    refs = {e.get("name"): e.get("valueFrom", {}).get("configMapKeyRef", {}) for e in target.get("env", []) or []}
    unread = [key for key, _ in env.app_env if refs.get(key, {}).get("key") != key]
    if missing or unread:
        return "failed", (f"container {env.container!r} lacks " + "; ".join(
            ([", ".join(missing)] if missing else []) + ([f"app.env keys {', '.join(unread)}"] if unread else [])))
    return "ok", (f"container {env.container!r} of Deployment {env.service_name} gets the probes and the "
                  f"{len(env.app_env)} app.env keys")


def verify_application(env: Environment, component: Path, app: Path, kubectl: str | None) -> tuple[Status, str, str]:
    """(status, summary, details) of the application rendered with the environment's Component."""

    if kubectl is None:
        return "skipped", "kubectl not installed (https://kubernetes.io/docs/tasks/tools/)", ""
    version = kubectl_version(kubectl)
    if version is None or version < KUSTOMIZE_MIN:
        return "skipped", "kubectl has no Kustomize Components: install kubectl >= 1.21", ""
    if not (component / "kustomization.yaml").is_file():
        return "failed", f"missing {component}; run: infragen build {env.name}", ""
    code, out, how = render(kubectl, app, component)
    if code != 0:
        return "failed", f"kubectl kustomize {how}: {out.strip().splitlines()[-1] if out.strip() else code}", out
    documents = [d for d in load_kubectl_output(out) if isinstance(d, dict)]  # `matchType: =` read as kubectl means it
    status, summary = judge(env, documents)
    deployment = rendered_deployment(env, documents)  # the details: its containers as rendered
    details = "\n".join(f"container {c.get('name')}: " + (f"image {c['image']}" if "image" in c
                                                          else "no image (added by the patch)")
                        for c in _containers(deployment)) if status == "failed" and deployment else ""
    return status, f"kubectl kustomize {how}: {summary}", details
