"""The CycloneDX 1.6 SBOM of one built wheel.

The document describes the package (``metadata.component``: its purl and the
sdist it was built from), the tool that built it (fromsource), the build
dependencies that were installed into the build environment (components with
``scope: excluded``: present at build time, not shipped), the packages of
other ecosystems compiled into the wheel (Rust crates, ``pkg:cargo/...``:
:class:`BundledComponent`, ``scope: required``), and for remediated
builds a ``pedigree`` with the backported patches, the advisories each one
resolves and the upstream release as ancestor, plus a ``vulnerabilities``
section that marks each fixed advisory ``resolved_with_pedigree``.  The
shared libraries manylinux repair grafted into the wheel are components too
(shipped, ``scope: required``): the copy's file name and sha256, and the
Debian package and version of the host file it came from where dpkg knows.

The SBOM is embedded in the wheel (PEP 770, ``.dist-info/sboms/``), so it
cannot contain the wheel's own digest: that digest depends on the SBOM's
bytes.  The wheel's digest is in the signed attestation instead, whose
byproducts also pin the SBOM file itself.

Output is deterministic: the same :class:`SbomInput` gives the same bytes (the
serial number is a UUIDv5 of the inputs, the timestamp is the build's
``SOURCE_DATE_EPOCH``, every bom-ref is derived from a purl).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from uuid import UUID, uuid5

from cyclonedx.model import (
    AttachedText,
    ExternalReference,
    ExternalReferenceType,
    HashAlgorithm,
    HashType,
    Property,
    XsUri,
)
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import (
    Component,
    ComponentScope,
    ComponentType,
    Diff,
    Patch,
    PatchClassification,
    Pedigree,
)
from cyclonedx.model.impact_analysis import ImpactAnalysisState
from cyclonedx.model.issue import IssueClassification, IssueType
from cyclonedx.model.tool import ToolRepository
from cyclonedx.model.vulnerability import BomTarget, Vulnerability, VulnerabilityAnalysis
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL
from packaging.version import InvalidVersion, Version

import fromsource
from fromsource.dist.names import normalize
from fromsource.errors import ProvenanceError
from fromsource.provenance.statement import (
    BundledComponent,
    PatchInfo,
    ResolvedDependency,
    SystemLibrary,
)

__all__ = ["SBOM_MEDIA_TYPE", "SBOM_PATH", "BundledComponent", "SbomInput", "build_sbom"]

SBOM_PATH = "sboms/fromsource.cdx.json"
"""Where the SBOM lives, relative to the wheel's ``.dist-info`` folder (PEP 770)."""

SBOM_MEDIA_TYPE = "application/vnd.cyclonedx+json"

# A fixed namespace for the serial numbers of our SBOMs (uuid5 over the inputs).
_SERIAL_NAMESPACE = UUID("5b0f2c3e-8a61-5d2e-9c1b-2f5d7e0a4b63")


@dataclass(frozen=True)
class SbomInput:
    """What the SBOM of one wheel says.

    *version* is the version the wheel carries (``2.0.0+fs.1`` for a
    remediated build; the upstream ancestor is its public part).  *epoch* is
    the build's SOURCE_DATE_EPOCH, used as the document's timestamp.
    *patch_texts* optionally maps a patch name to its diff, embedded in the
    pedigree.
    """

    project: str
    version: str
    wheel_filename: str
    sdist_url: str
    sdist_sha256: str
    dependencies: tuple[ResolvedDependency, ...]
    patches: tuple[PatchInfo, ...]
    epoch: int
    vulnerabilities_fixed: tuple[str, ...] = ()
    patch_texts: Mapping[str, str] = field(default_factory=dict)
    bundled: tuple[BundledComponent, ...] = ()
    """Packages compiled into the wheel (Rust crates): shipped, so ``scope: required``."""
    grafted: tuple[SystemLibrary, ...] = ()


def _purl(project: str, version: str, **qualifiers: str) -> PackageURL:
    return PackageURL(
        type="pypi", name=normalize(project), version=version, qualifiers=qualifiers or None
    )


def _sdist_reference(inp: SbomInput) -> ExternalReference:
    return ExternalReference(
        type=ExternalReferenceType.SOURCE_DISTRIBUTION,
        url=XsUri(inp.sdist_url),
        comment="the upstream sdist this wheel was built from",
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=inp.sdist_sha256)],
    )


def _serial(inp: SbomInput) -> UUID:
    facts = asdict(inp)
    facts["patch_texts"] = dict(inp.patch_texts)
    facts["builder"] = fromsource.__version__
    return uuid5(_SERIAL_NAMESPACE, json.dumps(facts, sort_keys=True, default=str))


def _dependency(dep: ResolvedDependency) -> Component:
    purl = _purl(dep.project, dep.version, file_name=dep.filename)
    return Component(
        type=ComponentType.LIBRARY,
        name=normalize(dep.project),
        version=dep.version,
        bom_ref=purl.to_string(),
        purl=purl,
        scope=ComponentScope.EXCLUDED,
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=dep.sha256)],
        external_references=[
            ExternalReference(type=ExternalReferenceType.DISTRIBUTION, url=XsUri(dep.uri))
        ],
        properties=[
            Property(name="fromsource:build-dependency", value="true"),
            Property(name="fromsource:source", value=dep.source),
        ],
    )


def _bundled(item: BundledComponent) -> Component:
    purl = PackageURL.from_string(item.purl)
    return Component(
        type=ComponentType.LIBRARY,
        name=purl.name,
        version=purl.version,
        bom_ref=item.purl,
        purl=purl,
        scope=ComponentScope.REQUIRED,
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=item.sha256)] if item.sha256 else [],
        properties=[Property(name=name, value=value) for name, value in item.properties],
    )


def _grafted(library: SystemLibrary) -> Component:
    """A host library copied into the wheel: shipped, named by its Debian package if known."""
    properties = [Property(name="fromsource:grafted-as", value=library.member)]
    for name, value in (
        ("fromsource:soname", library.soname),
        ("fromsource:source-path", library.source_path),
        ("fromsource:source-sha256", library.source_sha256),
    ):
        if value:
            properties.append(Property(name=name, value=value))
    purl = library.purl
    return Component(
        type=ComponentType.LIBRARY,
        name=library.package or library.file_name,
        version=library.package_version,
        bom_ref=f"grafted:{library.member}",
        purl=PackageURL.from_string(purl) if purl else None,
        scope=ComponentScope.REQUIRED,
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=library.sha256)],
        description=f"{library.file_name}: a shared library of the build host, copied into "
        "the wheel by manylinux repair (auditwheel)",
        properties=properties,
    )


def _pedigree(inp: SbomInput, upstream_version: str) -> Pedigree:
    upstream_purl = _purl(inp.project, upstream_version)
    ancestor = Component(
        type=ComponentType.LIBRARY,
        name=normalize(inp.project),
        version=upstream_version,
        bom_ref=upstream_purl.to_string() + "#upstream",
        purl=upstream_purl,
        external_references=[_sdist_reference(inp)],
    )
    patches = []
    for patch in inp.patches:
        text = inp.patch_texts.get(patch.name)
        patches.append(
            Patch(
                type=PatchClassification.BACKPORT,
                diff=Diff(
                    url=XsUri(patch.name),
                    text=AttachedText(content=text, content_type="text/x-diff")
                    if text is not None
                    else None,
                ),
                resolves=[
                    IssueType(type=IssueClassification.SECURITY, id=advisory)
                    for advisory in patch.fixes
                ],
            )
        )
    notes = "; ".join(f"{p.name} sha256:{p.sha256}" for p in inp.patches)
    return Pedigree(
        ancestors=[ancestor],
        patches=patches,
        notes=f"upstream {upstream_version} patched by fromsource: {notes}",
    )


def build_sbom(inp: SbomInput) -> bytes:
    """The CycloneDX 1.6 JSON document for *inp*, as UTF-8 bytes.

    A build with patches gets a pedigree (ancestor: the upstream release;
    patches of type backport resolving their advisories as security issues).
    Raises ProvenanceError when the version is not a valid PEP 440 version or
    the library rejects the document.
    """
    try:
        upstream_version = Version(inp.version).public
    except InvalidVersion as exc:
        raise ProvenanceError(
            f"{inp.wheel_filename}: version {inp.version!r} is not PEP 440; no SBOM was made",
            version=inp.version,
        ) from exc
    purl = _purl(inp.project, inp.version)
    component = Component(
        type=ComponentType.LIBRARY,
        name=normalize(inp.project),
        version=inp.version,
        bom_ref=purl.to_string(),
        purl=purl,
        external_references=[_sdist_reference(inp)],
        properties=[Property(name="fromsource:wheel", value=inp.wheel_filename)],
        pedigree=_pedigree(inp, upstream_version) if inp.patches else None,
    )
    tool = Component(
        type=ComponentType.APPLICATION,
        name="fromsource",
        version=fromsource.__version__,
        bom_ref=f"fromsource@{fromsource.__version__}",
    )
    dependencies = [_dependency(d) for d in inp.dependencies]
    bundled = [_bundled(b) for b in inp.bundled]
    grafted = [_grafted(g) for g in inp.grafted]
    fixed = sorted(set(inp.vulnerabilities_fixed) | {f for p in inp.patches for f in p.fixes})
    state = (
        ImpactAnalysisState.RESOLVED_WITH_PEDIGREE if inp.patches else ImpactAnalysisState.RESOLVED
    )
    bom = Bom(
        serial_number=_serial(inp),
        metadata=BomMetaData(
            timestamp=datetime.fromtimestamp(inp.epoch, UTC),
            tools=ToolRepository(components=[tool]),
            component=component,
        ),
        components=[*dependencies, *bundled, *grafted],
        vulnerabilities=[
            Vulnerability(
                bom_ref=f"vulnerability:{advisory}",
                id=advisory,
                analysis=VulnerabilityAnalysis(
                    state=state,
                    detail=f"fixed in {inp.version} by fromsource",
                ),
                affects=[BomTarget(ref=component.bom_ref.value or purl.to_string())],
            )
            for advisory in fixed
        ],
    )
    # The build dependencies hang off the package in the graph; their
    # ``excluded`` scope says they were needed to build it, not to run it.
    # Bundled crates and grafted libraries are compiled or copied into it (``required``).
    bom.register_dependency(component, [*dependencies, *bundled, *grafted])
    try:
        text = JsonV1Dot6(bom).output_as_string(indent=2)
    except (ValueError, TypeError) as exc:
        raise ProvenanceError(
            f"{inp.wheel_filename}: the SBOM could not be serialized ({exc})"
        ) from exc
    return text.encode("utf-8") + b"\n"
