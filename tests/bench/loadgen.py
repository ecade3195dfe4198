"""One load-generator process: N client connections driving the command workload.

    python -m tests.bench.loadgen      (started by tests/bench/run.py, not by hand)

It reads a JSON spec on its first stdin line, opens its connections, prints `ready`,
waits for `go` on stdin, runs, and prints one JSON line of results. The runner starts
one or more of these beside the servers so that the client's Python never shares an
interpreter (or a GIL) with the service it measures.

Drivers:
- `http`: a minimal HTTP/1.1 keep-alive client on asyncio streams (requests pre-built
  as bytes, responses parsed by hand): much less client CPU per request than httpx.
  With `batch: N` every request is one atomic `POST /api/v1/batches` of N lines drawn
  from the mix (a line per draw), and the counts are in lines; with `keyed` every
  request carries an `Idempotency-Key` of its own.
- `asyncpg`: the two statements of each pgbench script (tests/bench/pgbench/), prepared,
  with the same parameters: the baseline without HTTP, framework or the store's Python.
  For the `read` kind, the read-model statement the item route runs
  (projections/sql/get_item_with_stock.sql).

With `rate` it paces its commands (open loop per connection, never faster than the
rate); with `lag` it also polls `projection_checkpoints` every few milliseconds and
reports, per command, when its position became visible in every read model.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import json
import re
import resource
import sys
import time
import uuid

import msgspec

from tests.bench.workload import EVENTS, Commands, Setting, parse_script, to_positional

_encode = msgspec.json.encode
_RECORDED = re.compile(rb'"recorded":(\d+)')  # data.recorded of a batch's answer


class HttpClient:
    def __init__(self, host: str, port: int, key: str, *, keyed: bool = False):
        self.host, self.port = host, port
        self._headers = (f"Host: {host}:{port}\r\nX-API-Key: {key}\r\nContent-Type: application/json\r\n").encode()
        # Unique per request across processes and runs: a random prefix and a counter.
        self._keys = (f"Idempotency-Key: bench-{uuid.uuid4().hex}-{n}\r\n".encode() for n in itertools.count()) \
            if keyed else None
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self.writer:
            self.writer.close()

    def _request(self, kind: str, v: dict[str, int]) -> bytes:
        if kind == "read":
            return f"GET /api/v1/items/{v['item']} HTTP/1.1\r\n".encode() + self._headers + b"\r\n"
        match kind:
            case "add" | "remove":
                path, body = f"/api/v1/items/{v['item']}/{kind}", {"location_id": v["loc"], "quantity": v["qty"]}
            case "adjust":
                path, body = f"/api/v1/items/{v['item']}/adjust", {"location_id": v["loc"], "quantity": v["qty"], "reason": "bench"}
            case "transfer":
                path, body = "/api/v1/transfers", {"item_id": v["item"], "from_location_id": v["loc"],
                                                   "to_location_id": v["loc2"], "quantity": v["qty"]}
            case "reserve":
                path, body = f"/api/v1/jobs/{v['job']}/reservations", {
                    "items": [{"item_id": v["item"], "location_id": v["loc"], "quantity": v["qty"]}]}
            case _:
                raise ValueError(kind)
        return self._post(path, body)

    def _post(self, path: str, body: object) -> bytes:
        payload = _encode(body)
        key = next(self._keys) if self._keys is not None else b""
        return (f"POST {path} HTTP/1.1\r\n".encode() + self._headers + key
                + f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)

    @staticmethod
    def _line(kind: str, v: dict[str, int]) -> dict:
        """One batch line (DESIGN 10) for a single-item command of the mix."""
        line = {"kind": kind, "item_id": v["item"], "location_id": v["loc"], "quantity": v["qty"]}
        match kind:
            case "add" | "remove":
                return line
            case "adjust":
                return {**line, "reason": "bench"}
        raise ValueError(f"no batch line for {kind!r} in the bench")

    async def call(self, kind: str, v: dict[str, int]) -> tuple[int, int | None]:
        """(status, ledger position of the command's last event)."""
        status, position, _ = await self._exchange(self._request(kind, v))
        return status, position

    async def batch(self, lines: list[tuple[str, dict[str, int]]]) -> tuple[int, int | None, int]:
        """One atomic batch: (status, position of its last event, lines recorded)."""
        request = self._post("/api/v1/batches", {"atomic": True, "lines": [self._line(k, v) for k, v in lines]})
        status, position, body = await self._exchange(request)
        found = _RECORDED.search(body) if 200 <= status < 300 else None
        return status, position, int(found.group(1)) if found else 0

    async def _exchange(self, request: bytes) -> tuple[int, int | None, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = b""
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunks.append((await self.reader.readexactly(size + 2))[:-2])
                if size == 0:
                    break
            body = b"".join(chunks)
        if headers.get("connection", "").lower() == "close":
            await self.close()
            await self.open()
        position = headers.get("x-ledger-position")
        return status, int(position) if position else None, body


class PgClient:
    def __init__(self, dsn: str, kinds: list[str]):
        self.dsn, self.kinds = dsn, kinds
        self.conn = None
        self.statements: dict[str, list] = {}

    async def open(self) -> None:
        import asyncpg

        self.conn = await asyncpg.connect(self.dsn)
        for kind in self.kinds:
            if kind == "read":
                from projections.statements import in_schema

                self.statements[kind] = [await self.conn.prepare(in_schema("get_item_with_stock"))]
                continue
            prepared = []
            for sql in parse_script(kind).statements:
                text, names = to_positional(sql)
                prepared.append((await self.conn.prepare(text), names))
            self.statements[kind] = prepared

    async def close(self) -> None:
        if self.conn:
            await self.conn.close()

    async def call(self, kind: str, v: dict[str, int]) -> tuple[int, int | None]:
        if kind == "read":
            [item] = self.statements[kind]
            found = await item.fetchrow(v["org"], v["item"])
            return (200 if found else 404), None
        (load, load_names), (append, append_names) = self.statements[kind]
        await load.fetchrow(*[v[n] for n in load_names])
        positions = await append.fetchval(*[v[n] for n in append_names])
        return (200, positions[-1]) if positions else (599, None)  # 599: the append wrote nothing


class CheckpointPoller:
    """The lowest checkpoint of the given projections, every `interval` seconds."""

    def __init__(self, dsn: str, names: list[str], interval: float):
        self.dsn, self.names, self.interval = dsn, names, interval
        self.times: list[float] = []
        self.positions: list[int] = []
        self._stop = asyncio.Event()

    async def run(self) -> None:
        import asyncpg

        conn = self._conn = await asyncpg.connect(self.dsn)
        try:
            statement = await conn.prepare(
                "SELECT CASE WHEN count(*) = cardinality($1::text[]) THEN min(position) ELSE 0 END"
                " FROM projection_checkpoints WHERE name = ANY ($1::text[])")
            while not self._stop.is_set():
                position = await statement.fetchval(self.names)
                seen = time.time()
                if not self.positions or position > self.positions[-1]:
                    self.times.append(seen)
                    self.positions.append(position)
                await asyncio.sleep(self.interval)
        except BaseException:
            await conn.close()
            raise

    def visible_at(self, position: int) -> float | None:
        i = bisect.bisect_left(self.positions, position)
        return self.times[i] if i < len(self.positions) else None

    async def recorded_at(self, positions: list[int]) -> dict[int, float]:
        rows = await self._conn.fetch(
            "SELECT position, extract(epoch FROM recorded_at)::float8 AS t FROM events"
            " WHERE position = ANY ($1::bigint[])", positions)
        await self._conn.close()
        return {r["position"]: r["t"] for r in rows}

    def stop(self) -> None:
        self._stop.set()


async def run(spec: dict) -> dict:
    setting = Setting(**spec["setting"])
    mix: dict[str, int] = spec["mix"]
    connections, offset = spec["connections"], spec["client_offset"]
    batch = spec.get("batch")  # lines per request (HTTP batches), or None: one command per request
    if spec["driver"] == "http":
        clients = [HttpClient(spec["host"], spec["port"], spec["key"], keyed=spec.get("keyed", False))
                   for _ in range(connections)]
    else:
        clients = [PgClient(spec["dsn"], list(mix)) for _ in range(connections)]
    await asyncio.gather(*(c.open() for c in clients))
    commands = [Commands(setting, mix, offset + n, spec["seed"], spec["hot"]) for n in range(connections)]

    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    go = await loop.run_in_executor(None, sys.stdin.readline)
    if go.strip() != "go":
        raise SystemExit("expected go")

    poller = None
    if spec.get("lag"):
        poller = CheckpointPoller(spec["lag"]["dsn"], spec["lag"]["names"], spec["lag"]["interval"])
        poll_task = asyncio.create_task(poller.run())

    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    measure_from = started + spec["warmup"]
    until = measure_from + spec["seconds"]
    rate = spec.get("rate")  # commands/s for this process, or None: as fast as answers come
    interval = connections / rate if rate else 0.0
    latencies: list[int] = []
    done: list[tuple[float, int]] = []  # (wall time of the answer, position), measured window only
    counts = {"commands": 0, "events": 0, "errors": 0, "requests": 0}  # commands: lines of batches
    statuses: dict[str, int] = {}

    async def client(n: int) -> None:
        c, stream = clients[n], commands[n]
        next_at = started + interval * n / connections
        while True:
            if interval:
                now = time.perf_counter()
                if next_at > now:
                    await asyncio.sleep(next_at - now)
                next_at += interval
            begin = time.perf_counter()
            if begin >= until:
                return
            if batch:
                status, position, lines = await c.batch([stream.next() for _ in range(batch)])
                events = lines  # single-item lines: one event each
            else:
                kind, values = stream.next()
                status, position = await c.call(kind, values)
                lines, events = 1, EVENTS.get(kind, 1)
            end = time.perf_counter()
            # Counted by its answer's time: in steady state the answers inside the window
            # are the rate, whatever a request's length (a 100-line batch takes 100s of ms;
            # counting only requests begun and answered inside would lose about one per
            # connection at each end of the window).
            if end < measure_from or end > until:
                continue
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            if 200 <= status < 300 and lines:
                latencies.append(int((end - begin) * 1e6))
                counts["requests"] += 1
                counts["commands"] += lines
                counts["events"] += events
                if poller is not None and position:
                    done.append((time.time(), position))
            else:
                counts["errors"] += 1

    await asyncio.gather(*(client(n) for n in range(connections)))
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    result = {
        **counts, "statuses": statuses, "seconds": spec["seconds"], "latencies_us": latencies,
        "client_cpu_s": (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime),
    }
    if poller is not None:
        # Wait (bounded) until everything measured is visible, then match answers to polls.
        deadline = time.perf_counter() + spec["lag"].get("drain", 10.0)
        last = max((p for _, p in done), default=0)
        while (not poller.positions or poller.positions[-1] < last) and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        poller.stop()
        await poll_task
        recorded = await poller.recorded_at([p for _, p in done])
        lag_commit, lag_answer, invisible = [], [], 0
        for answered, position in done:
            visible = poller.visible_at(position)
            if visible is None:
                invisible += 1
                continue
            lag_commit.append(max(0.0, visible - recorded.get(position, answered)) * 1000)
            lag_answer.append(max(0.0, visible - answered) * 1000)
        result.update(lag_ms=lag_commit, lag_after_answer_ms=lag_answer, invisible=invisible,
                      poll_interval_ms=spec["lag"]["interval"] * 1000)
    await asyncio.gather(*(c.close() for c in clients))
    return result


def main() -> None:
    spec = json.loads(sys.stdin.readline())
    result = asyncio.run(run(spec))
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
