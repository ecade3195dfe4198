"""Jobs: reserve stock for a job, release it, and complete the job (consume what was used)."""

from __future__ import annotations

from datetime import UTC, datetime

from litestar import Controller, Request, Response, post
from litestar.params import JSONBody

from api import command_requests, shared
from api.responses import recorded
from api.routes.params import JobId
from ledger import errors
from ledger.commands import CompleteJob, Line, ReleaseStock, ReserveStock
from ledger.store import CommandResult
from schemas import JobCompleted, StockReleased, StockReserved
from schemas.api import CommandEnvelope, JobCommandResult, JobLineResult, JobLinesRequest, ReservationRequest

WRITE = {"scope": "inventory:write"}


def _lines(items) -> list[Line] | None:
    if items is None:
        return None
    return [Line(item_id=i.item_id, location_id=i.location_id, quantity=i.quantity) for i in items]


def job_result(job_id: int, result: CommandResult) -> JobCommandResult:
    body = JobCommandResult(job_id=job_id)
    for event in (e.data for e in result.events):
        line = JobLineResult(item_id=event.item_id, location_id=event.location_id, quantity=event.quantity)  # type: ignore[union-attr]  # a job command records stock events only; lines are given for a reservation
        match event:
            case StockReserved():
                body.reserved.append(line)
            case StockReleased():
                body.released.append(line)
            case JobCompleted():
                body.consumed.append(line)
    return body


class JobController(Controller):
    path = "/jobs/{job_id:int}"
    tags = ["jobs"]

    @post("/reservations", opt=WRITE, operation_id="reserveStock", status_code=201)
    async def reserve(self, request: Request, store: shared.Store, job_id: JobId, data: JSONBody[ReservationRequest]) -> Response[CommandEnvelope[JobCommandResult]]:
        """Hold stock for a job, every line or none; an optional `expires_at` releases it then."""
        if data.expires_at is not None:
            if data.expires_at.tzinfo is None:
                raise errors.ValidationFailed("expires_at needs a time zone (e.g. 2026-12-01T08:00:00Z)")
            if data.expires_at <= datetime.now(UTC):
                raise errors.ValidationFailed("expires_at is in the past")
        command = ReserveStock(job_id=job_id, lines=_lines(data.items), expires_at=data.expires_at, notes=data.notes)  # type: ignore[arg-type]  # a job command records stock events only; lines are given for a reservation
        result = await command_requests.execute(request, store, command)
        return recorded(request, job_result(job_id, result), result.position, status=201, message="Stock reserved")

    @post("/release", opt=WRITE, operation_id="releaseStock", status_code=200)
    async def release(self, request: Request, store: shared.Store, job_id: JobId, data: JSONBody[JobLinesRequest | None] = None) -> Response[CommandEnvelope[JobCommandResult]]:
        """Give back what a job holds: the lines given, or (no body) everything it holds."""
        command = ReleaseStock(job_id=job_id, lines=_lines(data.items if data else None), notes=data.notes if data else None)
        result = await command_requests.execute(request, store, command)
        return recorded(request, job_result(job_id, result), result.position, message="Stock released")

    @post("/complete", opt=WRITE, operation_id="completeJob", status_code=200)
    async def complete(self, request: Request, store: shared.Store, job_id: JobId, data: JSONBody[JobLinesRequest | None] = None) -> Response[CommandEnvelope[JobCommandResult]]:
        """Consume what the job used (no body: exactly what it holds), then release the rest."""
        command = CompleteJob(job_id=job_id, lines=_lines(data.items if data else None), notes=data.notes if data else None)
        result = await command_requests.execute(request, store, command)
        return recorded(request, job_result(job_id, result), result.position, message="Job completed")
