"""Locations: create and change (deactivate with `is_active: false`); reads from read models."""

from __future__ import annotations

import msgspec
from litestar import Controller, Request, Response, patch, post
from litestar.params import JSONBody

from api import command_requests, shared
from api.responses import recorded
from api.routes.params import LocationId
from ledger import errors
from ledger.commands import UpdateLocation
from projections.models import Location as LocationView
from schemas import LocationAttributes, location_stream
from schemas.api import CommandEnvelope, LocationCreate, LocationPatch

WRITE = {"scope": "inventory:write"}
_ATTRIBUTES = LocationAttributes.__struct_fields__


def location_view(location_id: int, attributes: LocationAttributes, created_at, updated_at) -> LocationView:
    return LocationView(
        id=location_id, **msgspec.structs.asdict(attributes), created_at=created_at, updated_at=updated_at
    )


class LocationController(Controller):
    path = "/locations"
    tags = ["locations"]

    @post("/", opt=WRITE, operation_id="createLocation", status_code=201)
    async def create(self, request: Request, store: shared.Store, data: JSONBody[LocationCreate]) -> Response[CommandEnvelope[LocationView]]:
        """Create a location (warehouse, vehicle, technician, job site or other)."""
        attributes = LocationAttributes(**{f: getattr(data, f) for f in _ATTRIBUTES})
        result = await command_requests.create_location(request, store, attributes)
        created = result.events[0]  # as recorded, so a replay answers the same
        view = location_view(created.data.location_id, created.data.attributes, created.recorded_at, created.recorded_at)  # type: ignore[arg-type, union-attr]  # the command decides the events it records; the location exists here
        return recorded(request, view, result.position, status=201, message="Location created")

    @patch("/{location_id:int}", opt=WRITE, operation_id="updateLocation")
    async def change(self, request: Request, store: shared.Store, location_id: LocationId, data: JSONBody[LocationPatch]) -> Response[CommandEnvelope[LocationView]]:
        """Change the attributes given; `is_active: false` deactivates (stock can still leave)."""
        changes = {f: v for f in _ATTRIBUTES if (v := getattr(data, f)) is not msgspec.UNSET}
        if not changes:
            raise errors.ValidationFailed("No recognized fields in the request body", code="no_fields")
        result = await command_requests.execute(request, store, UpdateLocation(location_id=location_id, changes=changes))
        created_at = await store.created_at(request.user.org_id, location_stream(location_id))
        location = result.snapshot.location(location_id)
        updated_at = result.events[-1].recorded_at if result.events else created_at
        view = location_view(location_id, location.attributes, created_at, updated_at)  # type: ignore[arg-type]  # the command decides the events it records; the location exists here
        return recorded(request, view, result.position, message="Location updated")
