"""The policy management API: ``/api/policy`` (admin tokens).

``install(api, state)`` (called by the app when this module exists) adds:

- ``GET /api/policy``: the rules, the default cooldown, the malware records held;
- ``POST /api/policy/rules``, ``DELETE /api/policy/rules/<id>``: change the rules
  (audited, with the admin token's id as the actor);
- ``GET /api/policy/test?purl=…``: what policy decides about a release, recording nothing;
- ``GET /api/policy/log``: the audit log, newest first.

A change takes effect in this process at once and in other processes within
one poll interval (the policy counter moves).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from fromsource.errors import PolicyError
from fromsource.index.api import Admin
from fromsource.index.state import IndexState
from fromsource.policy.decide import decide_purl
from fromsource.policy.store import add_rule, read_log, remove_rule

__all__ = ["install"]

router = APIRouter(prefix="/api/policy")


def _state(request: Request) -> IndexState:
    state: IndexState = request.app.state.index
    return state


class RuleRequest(BaseModel):
    """A new policy rule."""

    kind: Literal["block", "allow", "cooldown"]
    purl: str = Field(description="pkg:pypi/NAME, pkg:pypi/NAME@VERSION, or pkg:pypi/* (cooldown)")
    versions: str | None = Field(None, description="a PEP 440 specifier instead of @VERSION")
    days: int | None = Field(None, description="cooldown rules: days a release must be public")
    reason: str = Field("", description="why (required for allow rules)")


@router.get("", summary="Policy rules, default cooldown and malware records held")
def policy_show(request: Request, _admin: Admin) -> dict[str, object]:
    policy = _state(request).policy
    return {
        "policy_generation": policy.generation,
        "default_cooldown_days": policy.default_cooldown_days,
        "rules": [r.to_json() for r in policy.rules],
        "malware_records": policy.records,
    }


@router.post("/rules", status_code=201, summary="Add a block, allow or cooldown rule (audited)")
def rules_add(request: Request, body: RuleRequest, admin: Admin) -> dict[str, object]:
    index = _state(request)
    try:
        rule = add_rule(
            index.db,
            body.kind,
            body.purl,
            versions=body.versions,
            days=body.days,
            reason=body.reason,
            actor=f"token:{admin}",
        )
    except PolicyError as exc:
        raise HTTPException(409 if "rule_id" in exc.facts else 400, exc.to_json()) from exc
    index.refresh(force=True)
    return rule.to_json()


@router.delete("/rules/{rule_id}", summary="Remove a rule (audited)")
def rules_remove(
    request: Request, rule_id: Annotated[int, PathParam(ge=1, le=2**63 - 1)], admin: Admin
) -> dict[str, object]:
    index = _state(request)
    try:
        rule = remove_rule(index.db, rule_id, actor=f"token:{admin}")
    except PolicyError as exc:
        raise HTTPException(404, exc.to_json()) from exc
    index.refresh(force=True)
    return rule.to_json()


@router.get("/test", summary="What policy decides about a purl (nothing is recorded)")
def policy_test(
    request: Request,
    _admin: Admin,
    purl: Annotated[str, Query(description="pkg:pypi/NAME@VERSION, or pkg:pypi/NAME")],
    upload_time: Annotated[
        datetime | None, Query(description="when the release was published upstream")
    ] = None,
    sha256: Annotated[list[str] | None, Query(description="file digests to match")] = None,
) -> dict[str, object]:
    index = _state(request)
    index.refresh()
    published = upload_time
    if published is not None and published.tzinfo is None:
        published = published.replace(tzinfo=UTC)
    try:
        decision = decide_purl(
            purl,
            policy=index.policy,
            upload_time=published,
            sha256s=sha256 or (),
            now=datetime.now(UTC),
        )
    except PolicyError as exc:
        raise HTTPException(400, exc.to_json()) from exc
    return {"policy_generation": index.policy.generation, **decision.to_json()}


@router.get("/log", summary="The policy audit log, newest first")
def policy_log(
    request: Request,
    _admin: Admin,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    project: str | None = None,
    action: Annotated[list[str] | None, Query(description="only these actions")] = None,
) -> list[dict[str, object]]:
    entries = read_log(_state(request).db, limit=limit, project=project, actions=action or ())
    return [e.to_json() for e in entries]


def install(api: FastAPI, state: IndexState) -> None:
    """Register the ``/api/policy`` routes."""
    api.include_router(router)
