"""PEP 740 provenance objects around our DSSE envelopes.

PEP 740's attestation envelope is exactly a DSSE signature over an in-toto
statement (``statement`` + ``signature``, both base64), so our envelope maps
onto it without loss.  Where PEP 740 expects Sigstore verification material
(a Fulcio certificate and Rekor entries) we carry our Ed25519 key id instead:
trust comes from the keys published at ``/.well-known/fromsource/keys.json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fromsource.errors import ProvenanceError
from fromsource.provenance.dsse import IN_TOTO_PAYLOAD_TYPE, parse_envelope


def to_pep740(envelope: Mapping[str, Any], builder_id: str) -> dict[str, Any]:
    """The PEP 740 provenance object for one DSSE envelope."""
    signature = envelope["signatures"][0]
    return {
        "version": 1,
        "attestation_bundles": [
            {
                "publisher": {"kind": "fromsource", "builder": builder_id},
                "attestations": [
                    {
                        "version": 1,
                        "verification_material": {
                            "keyid": signature.get("keyid", ""),  # optional in DSSE
                            "certificate": None,
                            "transparency_entries": [],
                        },
                        "envelope": {
                            "statement": envelope["payload"],
                            "signature": signature["sig"],
                        },
                    }
                ],
            }
        ],
    }


def from_pep740(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The DSSE envelope inside a PEP 740 provenance object we produced."""
    try:
        attestation = doc["attestation_bundles"][0]["attestations"][0]
        envelope = {
            "payloadType": IN_TOTO_PAYLOAD_TYPE,
            "payload": attestation["envelope"]["statement"],
            "signatures": [
                {
                    "keyid": attestation["verification_material"]["keyid"],
                    "sig": attestation["envelope"]["signature"],
                }
            ],
        }
    except (KeyError, IndexError, TypeError) as exc:
        raise ProvenanceError(f"not a fromsource PEP 740 provenance object: {exc}") from exc
    return parse_envelope(envelope)
