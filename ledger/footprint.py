"""What a command reads: the items, locations and (item, location) places it touches.

Pure. The store loads exactly this snapshot of the write model before deciding, and locks
the streams the command may write when it has to fall back to locking.
"""

from __future__ import annotations

import msgspec

from ledger.commands import (
    AddStock,
    AdjustStock,
    AnyCommand,
    CompleteJob,
    CreateItem,
    CreateLocation,
    DeleteItem,
    ReleaseStock,
    RemoveStock,
    ReserveStock,
    SetCountedQuantity,
    TransferStock,
    UpdateItem,
    UpdateLocation,
)
from schemas import item_stream, location_stream


class Footprint(msgspec.Struct, frozen=True, kw_only=True):
    items: tuple[int, ...] = ()
    locations: tuple[int, ...] = ()
    places: tuple[tuple[int, int], ...] = ()
    job_ids: tuple[int, ...] = ()  # load every hold of these jobs as well
    whole_items: tuple[int, ...] = ()  # load these items at every place they have stock

    @property
    def empty(self) -> bool:
        return not (self.items or self.locations or self.places or self.job_ids)

    @property
    def target_stream(self) -> str | None:
        """The one stream an `If-Match` version refers to, if the command has one."""
        if len(self.items) == 1 and not self.job_ids:
            return item_stream(self.items[0])
        if not self.items and len(self.locations) == 1:
            return location_stream(self.locations[0])
        return None


def footprint(command: AnyCommand) -> Footprint:
    match command:
        case AddStock() | RemoveStock() | AdjustStock() | SetCountedQuantity():
            return _places([(command.item_id, command.location_id)])
        case TransferStock():
            return _places(
                [(command.item_id, command.from_location_id), (command.item_id, command.to_location_id)]
            )
        case ReserveStock():
            return _places([(line.item_id, line.location_id) for line in command.lines])
        case ReleaseStock() | CompleteJob():
            lines = command.lines or []
            return msgspec.structs.replace(
                _places([(line.item_id, line.location_id) for line in lines]), job_ids=(command.job_id,)
            )
        case CreateItem(location_id=None) | CreateLocation():
            return Footprint()  # a new stream: nothing to load
        case CreateItem():
            return Footprint(locations=(command.location_id,))  # type: ignore[arg-type]  # this command has a location
        case UpdateItem():  # at every place: the response tells the item's whole quantity
            return Footprint(items=(command.item_id,), whole_items=(command.item_id,))
        case DeleteItem():
            return Footprint(items=(command.item_id,), whole_items=(command.item_id,))
        case UpdateLocation():
            return Footprint(locations=(command.location_id,))
    raise TypeError(f"not a command: {command!r}")


def merged(footprints: list[Footprint]) -> Footprint:
    """What a batch of commands reads: the union of their footprints, in first-seen order."""
    def union(field: str) -> tuple:
        return tuple(dict.fromkeys(x for f in footprints for x in getattr(f, field)))

    return Footprint(items=union("items"), locations=union("locations"), places=union("places"),
                     job_ids=union("job_ids"), whole_items=union("whole_items"))


def _places(places: list[tuple[int, int]]) -> Footprint:
    return Footprint(
        items=tuple(dict.fromkeys(item for item, _ in places)),
        locations=tuple(dict.fromkeys(location for _, location in places)),
        places=tuple(dict.fromkeys(places)),
    )
