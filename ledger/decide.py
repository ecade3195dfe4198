"""The pure heart of the ledger: `decide(snapshot, command)` and `evolve(state, event)`.

No I/O here. The store loads a `Snapshot`, calls `decide`, and appends what comes back;
the write model, `verify` and as-of reads all fold events with the same `evolve`, whose
stock arithmetic is `ledger.effects` (which the projections and their rebuild use too).
"""

from __future__ import annotations

import uuid
from typing import overload

from msgspec.structs import replace

from ledger import errors
from ledger.commands import (
    AddStock,
    AdjustStock,
    AnyCommand,
    CompleteJob,
    CreateItem,
    CreateLocation,
    DeleteItem,
    Line,
    ReleaseStock,
    RemoveStock,
    ReserveStock,
    SetCountedQuantity,
    TransferStock,
    UpdateItem,
    UpdateLocation,
)
from ledger.effects import evolve_level, is_stock_event
from ledger.state import ItemState, LocationState, Snapshot
from schemas import (
    MAX_QUANTITY,
    ItemCreated,
    ItemDeleted,
    ItemUpdated,
    JobCompleted,
    LedgerEvent,
    LocationCreated,
    LocationUpdated,
    StockAdded,
    StockAdjusted,
    StockReleased,
    StockRemoved,
    StockReserved,
    TransferredIn,
    TransferredOut,
)

# --- evolve ---------------------------------------------------------------------------


@overload
def evolve(state: ItemState, event: LedgerEvent) -> ItemState: ...
@overload
def evolve(state: LocationState, event: LedgerEvent) -> LocationState: ...
def evolve(state: ItemState | LocationState, event: LedgerEvent) -> ItemState | LocationState:
    """Fold one event into the state of its stream; the version moves by one.

    What a stock event does to its place is `ledger.effects` (the one definition of it).
    """
    match state, event:
        case ItemState(), ItemCreated(attributes=attributes) | ItemUpdated(attributes=attributes):
            return replace(state, version=state.version + 1, attributes=attributes)
        case ItemState(), ItemDeleted():
            return replace(state, version=state.version + 1, deleted=True)
        case ItemState(), _ if is_stock_event(event):
            before = state.level(event.location_id)
            level = evolve_level(before, event)
            stock = {**state.stock, event.location_id: level}
            on_hand = state.quantity_on_hand + level.quantity - before.quantity
            return replace(state, version=state.version + 1, stock=stock, quantity_on_hand=on_hand)
        case LocationState(), LocationCreated(attributes=attributes) | LocationUpdated(attributes=attributes):
            return replace(state, version=state.version + 1, attributes=attributes)
    raise TypeError(f"{type(event).__name__} does not apply to {type(state).__name__}")


def evolve_snapshot(snapshot: Snapshot, event: LedgerEvent) -> Snapshot:
    """Evolve the one state in a snapshot that the event belongs to."""
    if isinstance(event, LocationCreated | LocationUpdated):
        location = evolve(snapshot.location(event.location_id), event)
        return replace(snapshot, locations={**snapshot.locations, event.location_id: location})
    item = evolve(snapshot.item(event.item_id), event)
    return replace(snapshot, items={**snapshot.items, event.item_id: item})


# --- decide ---------------------------------------------------------------------------


def decide(snapshot: Snapshot, command: AnyCommand) -> list[LedgerEvent]:
    """The events that carry out `command` on `snapshot`, or a `LedgerError` raised.

    Commands of several lines are decided line by line on the snapshot as the earlier
    lines leave it, so two lines on one (item, location) are checked on their sum.
    """
    return list(_decide(snapshot, command))


def _decide(snapshot: Snapshot, command: AnyCommand):  # noqa: C901 - one case per command
    match command:
        case AddStock(item_id=item_id, location_id=location_id, quantity=n):
            _positive(n)
            item = _item(snapshot, item_id)
            _receiving_location(snapshot, location_id)
            _within_limit(item.quantity_on_hand + n)
            yield StockAdded(item_id=item_id, location_id=location_id, quantity=n, notes=command.notes)

        case RemoveStock(item_id=item_id, location_id=location_id, quantity=n):
            _positive(n)
            item = _item(snapshot, item_id)
            _location(snapshot, location_id)
            _available(item, location_id, n)
            yield StockRemoved(item_id=item_id, location_id=location_id, quantity=n, notes=command.notes)

        case AdjustStock(item_id=item_id, location_id=location_id, quantity=n):
            if n == 0 or abs(n) > MAX_QUANTITY:
                raise errors.InvalidQuantity("quantity must be a non-zero 64-bit integer")
            item = _item(snapshot, item_id)
            yield _adjustment(snapshot, item, location_id, n, command.reason)

        case SetCountedQuantity(item_id=item_id, location_id=location_id, quantity=counted):
            _within_limit(counted)
            item = _item(snapshot, item_id)
            _location(snapshot, location_id)
            current = item.level(location_id).quantity
            if command.expected_quantity is not None and command.expected_quantity != current:
                raise errors.CountMismatch(
                    f"expected {command.expected_quantity} at the location, the ledger has {current}",
                    current_quantity=current,
                )
            if counted != current:
                # A count records what is physically there, so it may raise the quantity
                # even at an inactive location.
                yield _adjustment(snapshot, item, location_id, counted - current, command.reason, counted=counted)

        case TransferStock(item_id=item_id, from_location_id=source, to_location_id=target, quantity=n):
            _positive(n)
            if source == target:
                raise errors.SameLocation()
            item = _item(snapshot, item_id, code="item_not_found")
            _location(snapshot, source, code="from_location_not_found")
            _receiving_location(snapshot, target, code="to_location_not_found")
            if not item.level(source).recorded:
                raise errors.NoStock()
            _available(item, source, n)
            _within_limit(item.level(target).quantity + n)
            if not command.transfer_id:
                raise errors.ValidationFailed("a transfer needs a transfer_id")
            transfer_id = uuid.UUID(command.transfer_id)
            yield TransferredOut(
                item_id=item_id, location_id=source, to_location_id=target, quantity=n,
                transfer_id=transfer_id, notes=command.notes,
            )
            yield TransferredIn(
                item_id=item_id, location_id=target, from_location_id=source, quantity=n,
                transfer_id=transfer_id, notes=command.notes,
            )

        case ReserveStock(job_id=job_id, lines=lines):
            _some_lines(lines)
            for line in lines:
                _positive(line.quantity)
                item = _item(snapshot, line.item_id)
                _receiving_location(snapshot, line.location_id)
                _available(item, line.location_id, line.quantity)
                event = StockReserved(
                    item_id=line.item_id, location_id=line.location_id, job_id=job_id,
                    quantity=line.quantity, expires_at=command.expires_at, notes=command.notes,
                )
                yield event
                snapshot = evolve_snapshot(snapshot, event)

        case ReleaseStock(job_id=job_id, lines=lines):
            for line in _lines_or_holdings(snapshot, job_id, lines):
                if command.expired_at is not None and not _still_expired(snapshot, job_id, line, command.expired_at):
                    continue
                _check_held(snapshot, job_id, line)
                event = StockReleased(  # type: ignore[assignment]  # the command and the snapshot decide this
                    item_id=line.item_id, location_id=line.location_id, job_id=job_id,
                    quantity=line.quantity, reason=command.reason, notes=command.notes,  # type: ignore[arg-type]  # the command and the snapshot decide this
                )
                yield event
                snapshot = evolve_snapshot(snapshot, event)

        case CompleteJob(job_id=job_id, lines=lines):
            for line in _lines_or_holdings(snapshot, job_id, lines):
                item = _item(snapshot, line.item_id)
                level = item.level(line.location_id)
                from_reserved = min(line.quantity, level.held(job_id))
                excess = line.quantity - from_reserved
                if excess > level.available:
                    raise errors.InsufficientStock(
                        f"job {job_id} used {line.quantity} of item {line.item_id} at location "
                        f"{line.location_id}; it held {from_reserved} and {level.available} more are available",
                        available_quantity=level.available,
                        item_id=line.item_id,
                        location_id=line.location_id,
                    )
                event = JobCompleted(  # type: ignore[assignment]  # the command and the snapshot decide this
                    item_id=line.item_id, location_id=line.location_id, job_id=job_id,
                    quantity=line.quantity, from_reserved=from_reserved, notes=command.notes,
                )
                yield event
                snapshot = evolve_snapshot(snapshot, event)
            # Whatever the job still holds after it consumed its parts goes back to stock.
            for item_id, location_id, held in snapshot.job_holdings(job_id):
                yield StockReleased(
                    item_id=item_id, location_id=location_id, job_id=job_id, quantity=held,
                    reason="completed", notes=command.notes,
                )

        case CreateItem(item_id=item_id, attributes=attributes, initial_quantity=n, location_id=location_id):
            _item_attributes_present(attributes)
            if snapshot.item(item_id).attributes is not None:
                raise errors.Conflict(f"item {item_id} already exists")
            if n:
                _positive(n)
                if location_id is None:
                    raise errors.ValidationFailed("an initial quantity needs a location", code="missing_location_id")
                _receiving_location(snapshot, location_id)
            yield ItemCreated(item_id=item_id, attributes=attributes)
            if n:
                yield StockAdded(item_id=item_id, location_id=location_id, quantity=n, notes="initial quantity")  # type: ignore[arg-type]  # the command and the snapshot decide this

        case UpdateItem(item_id=item_id):
            item = _item(snapshot, item_id)
            if command.changes is not None:
                for field in ("part_number", "part_name"):
                    if field in command.changes and not str(command.changes[field] or "").strip():
                        raise errors.ValidationFailed(f"{field} cannot be empty", code=f"invalid_{field}")
                attributes = replace(item.attributes, **command.changes)  # type: ignore[assignment, type-var]  # the command and the snapshot decide this
            else:
                attributes = command.attributes  # type: ignore[assignment]  # the command and the snapshot decide this
            _item_attributes_present(attributes)
            changed = _changed(item.attributes, attributes)
            if changed:
                yield ItemUpdated(item_id=item_id, attributes=attributes, changed=changed)  # type: ignore[arg-type]  # the command and the snapshot decide this

        case DeleteItem(item_id=item_id):
            item = _item(snapshot, item_id)
            if any(level.quantity or level.reserved for level in item.stock.values()):
                raise errors.StockRemains(
                    f"item {item_id} still has stock or reservations; move or remove them first"
                )
            yield ItemDeleted(item_id=item_id)

        case CreateLocation(location_id=location_id, attributes=attributes):
            if not attributes.location_name.strip():
                raise errors.ValidationFailed("location_name must not be empty")
            if snapshot.location(location_id).exists:
                raise errors.Conflict(f"location {location_id} already exists")
            yield LocationCreated(location_id=location_id, attributes=attributes)

        case UpdateLocation(location_id=location_id):
            location = snapshot.location(location_id)
            if not location.exists:
                raise errors.NotFound(f"location {location_id} does not exist")
            if command.changes is not None:
                attributes = replace(location.attributes, **command.changes)  # type: ignore[assignment, type-var]  # the command and the snapshot decide this
            else:
                attributes = command.attributes  # type: ignore[assignment]  # the command and the snapshot decide this
            if not attributes.location_name.strip():  # type: ignore[union-attr]  # the command and the snapshot decide this
                raise errors.ValidationFailed("location_name must not be empty")
            changed = _changed(location.attributes, attributes)
            if changed:
                yield LocationUpdated(location_id=location_id, attributes=attributes, changed=changed)  # type: ignore[arg-type]  # the command and the snapshot decide this

        case _:
            raise TypeError(f"not a command: {command!r}")


# --- the rules, each in one place -----------------------------------------------------


def _positive(n: int) -> None:
    if not 0 < n <= MAX_QUANTITY:
        raise errors.InvalidQuantity("quantity must be a positive 64-bit integer")


def _within_limit(quantity: int) -> None:
    if not 0 <= quantity <= MAX_QUANTITY:
        raise errors.InvalidQuantity(f"the resulting quantity must stay within 0..{MAX_QUANTITY}")


def _item(snapshot: Snapshot, item_id: int, *, code: str = "not_found") -> ItemState:
    item = snapshot.item(item_id)
    if not item.exists:
        raise errors.NotFound(f"item {item_id} does not exist", code=code)
    return item


def _location(snapshot: Snapshot, location_id: int, *, code: str = "location_not_found") -> LocationState:
    location = snapshot.location(location_id)
    if not location.exists:
        raise errors.LocationNotFound(f"location {location_id} does not exist", code=code)
    return location


def _receiving_location(snapshot: Snapshot, location_id: int, *, code: str = "location_not_found") -> None:
    """A place stock goes into or is held at must exist and be active.

    An inactive location can still be emptied (remove, transfer out, release, consume),
    so deactivating one never traps stock.
    """
    if not _location(snapshot, location_id, code=code).active:
        raise errors.LocationInactive(f"location {location_id} is inactive")


def _available(item: ItemState, location_id: int, n: int) -> None:
    available = item.level(location_id).available
    if n > available:
        raise errors.InsufficientStock(
            f"only {available} of item {item.item_id} available at location {location_id}; requested {n}",
            available_quantity=available,
            item_id=item.item_id,
            location_id=location_id,
        )


def _adjustment(
    snapshot: Snapshot,
    item: ItemState,
    location_id: int,
    n: int,
    reason: str | None,
    *,
    counted: int | None = None,
) -> StockAdjusted:
    if n > 0 and counted is None:
        _receiving_location(snapshot, location_id)
    else:
        _location(snapshot, location_id)
    level = item.level(location_id)
    if level.quantity + n < level.reserved:
        raise errors.InsufficientStock(
            f"adjusting by {n} would leave {level.quantity + n} at location {location_id}, "
            f"below the {level.reserved} reserved",
            available_quantity=level.available,
            item_id=item.item_id,
            location_id=location_id,
        )
    _within_limit(item.quantity_on_hand + n)
    return StockAdjusted(
        item_id=item.item_id, location_id=location_id, quantity=n, reason=reason,
        counted_quantity=counted,
    )


def _some_lines(lines: list[Line]) -> None:
    if not lines:
        raise errors.ValidationFailed("items must contain at least one line")


def _lines_or_holdings(snapshot: Snapshot, job_id: int, lines: list[Line] | None) -> list[Line]:
    if lines is None:
        holdings = snapshot.job_holdings(job_id)
        if not holdings:
            raise errors.NotFound(f"job {job_id} holds no reservations")
        return [Line(item_id=i, location_id=loc, quantity=q) for i, loc, q in holdings]
    _some_lines(lines)
    for line in lines:
        _positive(line.quantity)
        _item(snapshot, line.item_id)
        _location(snapshot, line.location_id)
    return lines


def _check_held(snapshot: Snapshot, job_id: int, line: Line) -> None:
    held = snapshot.item(line.item_id).level(line.location_id).held(job_id)
    if line.quantity > held:
        raise errors.InsufficientReservation(
            f"job {job_id} holds {held} of item {line.item_id} at location {line.location_id}; "
            f"cannot release {line.quantity}",
            reserved_quantity=held,
            item_id=line.item_id,
            location_id=line.location_id,
        )


def _still_expired(snapshot: Snapshot, job_id: int, line: Line, expired_at) -> bool:
    """Whether the job's hold at the line's place is the one an expiry found: the same
    `expires_at` (so still past: time only moves on) and the line's quantity. Renewing
    moves `expires_at`; giving back, consuming or releasing changes or ends the hold."""
    hold = snapshot.item(line.item_id).level(line.location_id).holds.get(job_id)
    return hold is not None and hold.expires_at == expired_at and hold.quantity == line.quantity


def _item_attributes_present(attributes) -> None:
    if not attributes.part_number.strip():
        raise errors.ValidationFailed("part_number must not be empty", code="missing_part_number")
    if not attributes.part_name.strip():
        raise errors.ValidationFailed("part_name must not be empty", code="missing_part_name")


def _changed(before, after) -> list[str]:
    return [f for f in after.__struct_fields__ if getattr(before, f) != getattr(after, f)]
