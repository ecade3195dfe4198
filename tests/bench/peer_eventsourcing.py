"""The peer: the same single-item movement workload recorded with the `eventsourcing`
library (its PostgreSQL application recorder), on the same PostgreSQL server.

    python -m tests.bench.peer_eventsourcing --url postgresql://.../db --threads 8 --seconds 10 --items 2000

One `Stock` aggregate per item with a `moved(quantity)` event (refused below zero, as a
Remove is); an `Application` with `PERSISTENCE_MODULE=eventsourcing.postgres` and the
`POSTGRES_*` settings taken from the URL (the database must exist; the library creates
its tables). The aggregates are created and stocked first; then `threads` threads each
loop: get a random aggregate from the repository, `moved(+/-q)`, save. A save that loses
a version race (two threads on one aggregate) is retried and counted. Prints one JSON
line: events recorded per second and p50/p99 of one get-move-save.

Needs the `bench` extra (`pip install -e '.[bench]'`): eventsourcing and psycopg.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import threading
import time
from urllib.parse import unquote, urlsplit


def configure(url: str, threads: int) -> None:
    parts = urlsplit(url)
    os.environ.update(
        PERSISTENCE_MODULE="eventsourcing.postgres",
        POSTGRES_DBNAME=parts.path.lstrip("/"),
        POSTGRES_HOST=parts.hostname or "127.0.0.1",
        POSTGRES_PORT=str(parts.port or 5432),
        POSTGRES_USER=unquote(parts.username or "postgres"),
        POSTGRES_PASSWORD=unquote(parts.password or ""),
        POSTGRES_POOL_SIZE=str(threads),
        POSTGRES_MAX_OVERFLOW="4",
        CREATE_TABLE="yes",
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=1)
    parser.add_argument("--items", type=int, default=2000)
    args = parser.parse_args()
    configure(args.url, args.threads)

    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate, event
    from eventsourcing.persistence import IntegrityError

    class Stock(Aggregate):
        def __init__(self, item: int):
            self.item = item
            self.quantity = 0

        @event("Moved")
        def moved(self, quantity: int) -> None:
            if self.quantity + quantity < 0:
                raise ValueError("insufficient stock")
            self.quantity += quantity

    class Inventory(Application):
        pass

    app = Inventory()
    ids = []
    batch = []
    for n in range(args.items):
        stock = Stock(n + 1)
        stock.moved(10**12)
        batch.append(stock)
        ids.append(stock.id)
        if len(batch) == 200:
            app.save(*batch)
            batch = []
    if batch:
        app.save(*batch)

    weights = {"add": 50, "remove": 30, "adjust": 20}  # as tests/bench/workload.py SINGLE
    start = time.perf_counter()
    measure_from = start + args.warmup
    until = measure_from + args.seconds
    latencies: list[list[int]] = [[] for _ in range(args.threads)]
    conflicts = [0] * args.threads

    def worker(n: int) -> None:
        rng = random.Random(n)
        kinds, w = list(weights), list(weights.values())
        while True:
            begin = time.perf_counter()
            if begin >= until:
                return
            kind = rng.choices(kinds, w)[0]
            quantity = rng.randint(1, 3) * rng.choice((-1, 1)) if kind == "adjust" else rng.randint(1, 5)
            if kind == "remove":
                quantity = -quantity
            aggregate_id = ids[rng.randrange(len(ids))]
            while True:
                stock = app.repository.get(aggregate_id)
                stock.moved(quantity)
                try:
                    app.save(stock)
                    break
                except IntegrityError:
                    conflicts[n] += 1
            end = time.perf_counter()
            if measure_from <= end <= until:  # by the answer's time, as tests/bench/loadgen.py
                latencies[n].append(int((end - begin) * 1e6))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    app.close()
    everything = sorted(x for part in latencies for x in part)
    print(json.dumps({"events": len(everything), "seconds": args.seconds, "latencies_us": everything,
                      "conflicts": sum(conflicts), "threads": args.threads}))


if __name__ == "__main__":
    main()
