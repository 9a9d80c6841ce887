"""BundleIndex: find a Bundle's resources by reference, and say where each one sits."""

from __future__ import annotations

from typing import TypeVar

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.domainresource import DomainResource
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.resource import Resource

R = TypeVar("R", bound=Resource)


class BundleIndex:
    """The resources of one Bundle (entries and their contained resources), by reference.

    References resolve the way a FHIR client resolves them inside a Bundle:

    - ``#id``: a resource contained in the referring resource (``container``);
    - absolute URLs and ``urn:uuid:``/``urn:oid:``: an entry whose ``fullUrl`` is that value;
    - relative ``Type/id``: the entry with that resourceType and id;
    - a version suffix (``/_history/2``) is ignored;
    - identifier-only references: the entry (of ``Reference.type``, if given) carrying that
      identifier system and value.
    """

    def __init__(self, bundle: Bundle) -> None:
        self._entries: list[Resource] = []
        self._paths: dict[int, str] = {}
        self._full_urls: dict[int, str] = {}
        self._by_url: dict[str, Resource] = {}
        self._by_type_id: dict[tuple[str, str], Resource] = {}
        for i, entry in enumerate(bundle.entry or []):
            resource = entry.resource
            if resource is None:
                continue
            path = f"entry[{i}].resource"
            self._entries.append(resource)
            self._paths[id(resource)] = path
            if entry.fullUrl:
                self._full_urls[id(resource)] = entry.fullUrl
                self._by_url.setdefault(entry.fullUrl, resource)
            if resource.id:
                self._by_type_id.setdefault((resource.get_resource_type(), resource.id), resource)
            if isinstance(resource, DomainResource):
                for j, inner in enumerate(resource.contained or []):
                    self._paths[id(inner)] = f"{path}.contained[{j}]"

    def entries(self, model: type[R]) -> list[R]:
        """The Bundle's entry resources of type ``model``, in entry order (no contained ones)."""
        return [r for r in self._entries if isinstance(r, model)]

    def resolve(
        self, reference: Reference | None, *, container: Resource | None = None
    ) -> Resource | None:
        """The resource ``reference`` points to, or None when it is not in the Bundle."""
        if reference is None:
            return None
        target = reference.reference
        if target is None:
            return self._by_identifier(reference)
        if target.startswith("#"):
            contained = container.contained if isinstance(container, DomainResource) else None
            return next((r for r in contained or [] if r.id == target[1:]), None)
        target = target.split("/_history/", 1)[0]
        if "://" in target or target.startswith("urn:"):
            return self._by_url.get(target)
        parts = target.split("/")
        if len(parts) != 2:
            return None
        return self._by_type_id.get((parts[0], parts[1]))

    def path_of(self, resource: Resource) -> str | None:
        """The JSON path of ``resource`` in the Bundle (``entry[3].resource``), if it is there."""
        return self._paths.get(id(resource))

    def full_url_of(self, resource: Resource) -> str | None:
        """The ``fullUrl`` of the entry holding ``resource``, if it has one."""
        return self._full_urls.get(id(resource))

    def _by_identifier(self, reference: Reference) -> Resource | None:
        wanted = reference.identifier
        if wanted is None or not wanted.value:
            return None
        for resource in self._entries:
            if reference.type and resource.get_resource_type() != reference.type:
                continue
            identifiers = getattr(resource, "identifier", None)
            if not isinstance(identifiers, list):
                continue
            for identifier in identifiers:
                if identifier.value == wanted.value and (
                    wanted.system is None or identifier.system == wanted.system
                ):
                    return resource
        return None
