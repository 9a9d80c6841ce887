"""What a world starts with: the scenario's EHR and payer resources, reply scripts and ERP records.

A :class:`WorldSpec` is data only; a connectors factory that can seed (``WorldSeeder``) writes it
into its systems: the simulator into Redis, a real deployment's test servers over REST.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from carebound.tools.connectors._erp import ErpData
from carebound.tools.connectors._errors import ConnectorError
from carebound.tools.connectors._outreach import ReplyScript

_URN_UUID = "urn:uuid:"


class WorldSpec(BaseModel):
    """What a simulated world starts with (the ``world`` part of a scenario)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ehr: list[dict[str, Any]] = []
    """FHIR R4 resources in the EHR (each with ``resourceType`` and ``id``)."""
    payer: list[dict[str, Any]] = []
    """FHIR R4 resources the payer answers from: Coverage, CoverageEligibilityResponse,
    ClaimResponse, and the Patients they reference."""
    replies: list[ReplyScript] = []
    """How referring offices answer outreach."""
    erp: ErpData | None = None
    """Purchase orders, goods receipts and invoices in the ERP."""

    @classmethod
    def from_bundles(
        cls,
        ehr_bundle: Mapping[str, Any] | None,
        payer_bundle: Mapping[str, Any] | None,
        replies: Sequence[ReplyScript] = (),
        erp: ErpData | None = None,
    ) -> WorldSpec:
        """Build a spec from FHIR Bundle JSON: each entry's resource goes to that system.

        An entry without ``resource.id`` whose ``fullUrl`` is ``urn:uuid:<uuid>`` gets the uuid
        as its id.

        Raises:
            ConnectorError: a bundle is not a Bundle or has an entry without a resource.
        """
        return cls(
            ehr=_bundle_resources(ehr_bundle, "EHR bundle"),
            payer=_bundle_resources(payer_bundle, "payer bundle"),
            replies=list(replies),
            erp=erp,
        )

    def digest(self) -> str:
        """A SHA-256 of the spec's canonical JSON: equal specs, equal digests."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def _bundle_resources(bundle: Mapping[str, Any] | None, what: str) -> list[dict[str, Any]]:
    if bundle is None:
        return []
    if bundle.get("resourceType") != "Bundle":
        raise ConnectorError(
            f"{what}: expected a FHIR Bundle, got resourceType {bundle.get('resourceType')!r}",
            hint='pass the parsed Bundle JSON ({"resourceType": "Bundle", "entry": [...]})',
        )
    resources: list[dict[str, Any]] = []
    for n, entry in enumerate(bundle.get("entry", [])):
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if not isinstance(resource, Mapping):
            raise ConnectorError(
                f"{what}: entry #{n} has no resource",
                hint="every Bundle entry of a case must carry its resource inline",
            )
        item = dict(resource)
        full_url = entry.get("fullUrl")
        if "id" not in item and isinstance(full_url, str) and full_url.startswith(_URN_UUID):
            item["id"] = full_url[len(_URN_UUID) :]
        resources.append(item)
    return resources
