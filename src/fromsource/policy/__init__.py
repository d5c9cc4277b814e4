"""Policy: which releases may be listed, served and built (issue 15).

Pure rule evaluation (:mod:`.rules`, :mod:`.malware`, :mod:`.decide`) apart
from storage (:mod:`.store`: rules, malware records, the audit log), the
build pipeline's gate (:mod:`.gate`) and the withdrawal of built malware
(:mod:`.withdraw`).  docs/policy.md describes the behaviour.
"""

from fromsource.policy.decide import Decision, Policy, Verdict, decide, project_refusal
from fromsource.policy.malware import MalwareRecord, malware_record
from fromsource.policy.rules import DEFAULT_COOLDOWN_DAYS, Rule, Subject, parse_purl, purl_of

__all__ = [
    "DEFAULT_COOLDOWN_DAYS",
    "Decision",
    "MalwareRecord",
    "Policy",
    "Rule",
    "Subject",
    "Verdict",
    "decide",
    "malware_record",
    "parse_purl",
    "project_refusal",
    "purl_of",
]
