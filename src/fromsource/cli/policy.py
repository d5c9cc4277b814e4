"""``fromsource policy list|add|remove|test|log``: the policy rules and their audit log."""

from __future__ import annotations

import getpass
import sys
from datetime import UTC, datetime

import click

from fromsource.cli.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    handle_errors,
    print_json,
    settings_from,
)
from fromsource.policy.decide import decide_purl
from fromsource.policy.rules import KINDS, Rule, parse_purl
from fromsource.policy.store import add_rule, load_policy, read_log, remove_rule
from fromsource.store.db import Database, open_database

SCHEMA_VERSION = 1

_FORMAT = click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)


def _db(ctx: click.Context) -> Database:
    return open_database(settings_from(ctx).resolved_database_url)


def actor() -> str:
    """Who changes policy from this command line (for the audit log)."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "cli"


def _rule_line(rule: Rule) -> str:
    days = f"  {rule.days} day(s)" if rule.days is not None else ""
    reason = f"  {rule.reason}" if rule.reason else ""
    return (
        f"{rule.id:>4}  {rule.kind:<8}  {rule.subject}{days}{reason}  "
        f"[{rule.created_by or '?'}, {rule.created_at:%Y-%m-%d %H:%M}]"
    )


@click.group(
    help="Policy: block and allow rules by purl, the cooldown for young upstream releases, "
    "and malware records (OSV MAL- ids, imported with `fromsource advisories import`). "
    "Malicious or blocked versions are never listed, served or built; every decision that "
    "hides, blocks or lets something through is audited (`policy log`). See docs/policy.md.",
)
def policy() -> None:
    pass


@policy.command("list", help="List the rules, the default cooldown and the malware records held.")
@_FORMAT
@click.pass_context
@handle_errors
def list_(ctx: click.Context, fmt: str) -> None:
    db = _db(ctx)
    try:
        policy = load_policy(db)
    finally:
        db.dispose()
    rules, generation, cooldown = (
        list(policy.rules),
        policy.generation,
        policy.default_cooldown_days,
    )
    if fmt == "json":
        print_json(
            {
                "schema_version": SCHEMA_VERSION,
                "policy_generation": generation,
                "default_cooldown_days": cooldown,
                "rules": [r.to_json() for r in rules],
                "malware_records": policy.records,
            }
        )
        return
    click.echo(
        f"policy generation {generation}; default cooldown {cooldown} day(s); "
        f"{policy.records} malware record(s) (MAL-)"
    )
    if not rules:
        click.echo("no rules (`fromsource policy add` adds one)", err=True)
    for rule in rules:
        click.echo(_rule_line(rule))


@policy.command(
    "add",
    help="Add a rule. KIND is block, allow or cooldown; PURL is pkg:pypi/NAME, "
    "pkg:pypi/NAME@VERSION or, for the default cooldown, pkg:pypi/*. Examples: "
    "`policy add block pkg:pypi/requests --versions '<2.20' --reason 'CVE-2018-18074'`, "
    "`policy add allow pkg:pypi/litellm@1.82.7 --reason 'forensics lab'`, "
    "`policy add cooldown pkg:pypi/* --days 14`. An allow rule wins over malware records, "
    "block rules and the cooldown, needs --reason and is audited whenever it lets something "
    "through. Exit 2 for a malformed or duplicate rule.",
)
@click.argument("kind", type=click.Choice(KINDS))
@click.argument("purl")
@click.option(
    "--versions", help="A PEP 440 specifier instead of @VERSION, e.g. '<2' or '>=1.4,!=1.5'."
)
@click.option("--days", type=int, help="Cooldown rules: days a release must be public first.")
@click.option("--reason", default="", help="Why (required for allow rules; kept in the audit log).")
@_FORMAT
@click.pass_context
@handle_errors
def add(
    ctx: click.Context,
    kind: str,
    purl: str,
    versions: str | None,
    days: int | None,
    reason: str,
    fmt: str,
) -> None:
    db = _db(ctx)
    try:
        rule = add_rule(db, kind, purl, versions=versions, days=days, reason=reason, actor=actor())
    finally:
        db.dispose()
    if fmt == "json":
        print_json({"schema_version": SCHEMA_VERSION, "rule": rule.to_json()})
    else:
        click.echo(_rule_line(rule))


@policy.command("remove", help="Remove rule ID (see `policy list`). Exit 2 when there is none.")
@click.argument("rule_id", type=int)
@_FORMAT
@click.pass_context
@handle_errors
def remove(ctx: click.Context, rule_id: int, fmt: str) -> None:
    db = _db(ctx)
    try:
        rule = remove_rule(db, rule_id, actor=actor())
    finally:
        db.dispose()
    if fmt == "json":
        print_json({"schema_version": SCHEMA_VERSION, "removed": rule.to_json()})
    else:
        click.echo(f"removed: {_rule_line(rule).strip()}")


def _parse_time(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise click.BadParameter(
            f"{text!r} is not an ISO 8601 time such as 2026-05-01T12:00Z"
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@policy.command(
    "test",
    help="Say what policy decides about PURL (pkg:pypi/NAME@VERSION, or pkg:pypi/NAME for the "
    "whole project), without recording anything. --upload-time weighs the cooldown as for an "
    "upstream release published then; --sha256 matches files against the malware records. "
    "Exit 0 allowed, 1 denied, 2 error.",
)
@click.argument("purl")
@click.option("--upload-time", help="When the release was published upstream (ISO 8601).")
@click.option("--sha256", "sha256s", multiple=True, help="A file's sha256 (repeatable).")
@_FORMAT
@click.pass_context
@handle_errors
def test(
    ctx: click.Context, purl: str, upload_time: str | None, sha256s: tuple[str, ...], fmt: str
) -> None:
    published = _parse_time(upload_time)
    parse_purl(purl)  # a malformed purl fails before the database is opened
    db = _db(ctx)
    try:
        policy = load_policy(db, parse_purl(purl).project)
    finally:
        db.dispose()
    decision = decide_purl(
        purl, policy=policy, upload_time=published, sha256s=sha256s, now=datetime.now(UTC)
    )
    if fmt == "json":
        print_json(
            {
                "schema_version": SCHEMA_VERSION,
                "policy_generation": policy.generation,
                **decision.to_json(),
            }
        )
    else:
        verdict = "allowed" if decision.allowed else f"denied ({decision.status})"
        click.echo(f"{decision.purl}: {verdict} [{decision.verdict}] {decision.reason}")
    sys.exit(EXIT_OK if decision.allowed else EXIT_FINDINGS)


@policy.command(
    "log",
    help="Show the audit log, newest first: every decision that hid, refused or let through "
    "a release, every withdrawn file, every rule change.",
)
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@click.option("--project", help="Only entries about this project.")
@click.option("--action", "actions", multiple=True, help="Only these actions (repeatable).")
@_FORMAT
@click.pass_context
@handle_errors
def log(
    ctx: click.Context, limit: int, project: str | None, actions: tuple[str, ...], fmt: str
) -> None:
    db = _db(ctx)
    try:
        entries = read_log(db, limit=limit, project=project, actions=actions)
    finally:
        db.dispose()
    if fmt == "json":
        print_json({"schema_version": SCHEMA_VERSION, "entries": [e.to_json() for e in entries]})
        return
    if not entries:
        click.echo("the audit log holds no matching entry", err=True)
    for entry in entries:
        where = "/".join(p for p in (entry.repo, entry.filename) if p)
        click.echo(
            f"{entry.at:%Y-%m-%d %H:%M:%S}  {entry.action:<13}  {entry.verdict:<8}  "
            f"{where or '-'}  {entry.reason}  [{entry.actor or '?'}]"
        )
