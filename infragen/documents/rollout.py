"""kubernetes/rollout.yaml: the Argo Rollout that runs the Deployment's pod template (workloadRef), with the canary
steps or the blue-green switch and their analysis. No replicas: the HPA scales the Rollout."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..models.rollout import HASH_ARG
from ..models.timing import CANARY_STARTING_STEP
from ..models.types import format_duration

if TYPE_CHECKING:
    from ..models.environment import Environment

NOTE = ("Argo Rollouts runs the Deployment's pods (workloadRef): the Deployment keeps its pod template, the Rollout its\n"
        "strategy. The HPA scales the Rollout; no replicas here.")

NEW_PODS_ARG = [{"name": HASH_ARG, "valueFrom": {"podTemplateHashValue": "Latest"}}]


def _canary(env: Environment) -> dict[str, Any]:
    r = env.spec.rollout
    canary: dict[str, Any] = {"maxSurge": r.max_surge, "maxUnavailable": r.max_unavailable}
    if r.canary.analysis:  # in the background from the first weight's pods until the rollout completes
        canary["analysis"] = {"templates": [{"templateName": env.rollout.gates_template}], "args": NEW_PODS_ARG,
                              "startingStep": CANARY_STARTING_STEP}
    pause = {"duration": format_duration(r.canary.pause)} if r.canary.pause is not None else {}
    canary["steps"] = [step for weight in r.canary.steps for step in ({"setWeight": weight}, {"pause": pause})]
    return {"canary": canary}


def _blue_green(env: Environment) -> dict[str, Any]:
    bg, plan = env.spec.rollout.blue_green, env.rollout
    blue_green: dict[str, Any] = {
        "activeService": plan.active_service, "previewService": plan.preview_service,
        "autoPromotionEnabled": bg.auto_promote, "scaleDownDelaySeconds": bg.rollback_window,
        "scaleDownDelayRevisionLimit": 1}  # one old stack: two releases in the window never leave three
    if bg.analysis:
        blue_green["prePromotionAnalysis"] = {"templates": [{"templateName": plan.preview_check_template}]}
        blue_green["postPromotionAnalysis"] = {"templates": [{"templateName": plan.gates_template}],
                                               "args": NEW_PODS_ARG}
    return {"blueGreen": blue_green}


def _document(env: Environment) -> dict[str, Any]:
    r = env.spec.rollout
    strategy = _canary(env) if env.rollout.strategy == "canary" else _blue_green(env)
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": env.metadata(env.service_name),
            "spec": {"workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": env.service_name,
                                     "scaleDown": r.workload_scale_down},
                     "minReadySeconds": r.min_ready_seconds, "progressDeadlineSeconds": r.progress_deadline_seconds,
                     "strategy": strategy}}


def documents(env: Environment) -> list[dict[str, Any]]:
    return [_document(env)]
