"""The command workload shared by the three drivers (HTTP, pgbench, raw asyncpg).

The mix and the parameter distributions are defined once here and in the pgbench
scripts (`tests/bench/pgbench/*.sql`), which hold the SQL both baselines run: pgbench
runs the files as they are, the raw asyncpg driver reads the same files and binds the
same variables. The first statement of every script is `ledger/sql/load_snapshot.sql`
with that command's parameters; `python -m tests.bench.workload` regenerates it after a
change to that file, and `check_scripts()` (run by the benchmark and its smoke test)
says when a script has fallen behind.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

SCRIPTS = Path(__file__).parent / "pgbench"

# Command mix (weights in percent): single-item movements, transfers and reservations.
MIX = {"add": 30, "remove": 20, "adjust": 10, "transfer": 25, "reserve": 15}
# The peer workload: single-item movements only (one event each).
SINGLE = {"add": 50, "remove": 30, "adjust": 20}
# The read workload: GET /api/v1/items/{id} (an item with its stock at every location).
READ = {"read": 100}
EVENTS = {"transfer": 2, "read": 0}  # events per command when not 1

# load_snapshot's parameters ($1 and its {arrays}) per command shape, in the scripts' variables.
_ONE_PLACE = {
    "$1": ":org::bigint", "item_ids": "ARRAY[:item::bigint]", "location_ids": "ARRAY[:loc::bigint]",
    "place_items": "ARRAY[:item::bigint]", "place_locations": "ARRAY[:loc::bigint]", "job_ids": "'{}'::bigint[]",
    "whole_items": "'{}'::bigint[]",
}
_TWO_PLACES = {
    **_ONE_PLACE, "location_ids": "ARRAY[:loc::bigint, :loc2::bigint]",
    "place_items": "ARRAY[:item::bigint, :item::bigint]", "place_locations": "ARRAY[:loc::bigint, :loc2::bigint]",
}
LOAD_PARAMS = {"add": _ONE_PLACE, "remove": _ONE_PLACE, "adjust": _ONE_PLACE, "reserve": _ONE_PLACE,
               "transfer": _TWO_PLACES}
_LOAD_MARK = "-- load_snapshot:"


def load_snapshot_sql() -> str:
    """ledger/sql/load_snapshot.sql without its comments."""
    text = (resources.files("ledger") / "sql" / "load_snapshot.sql").read_text()
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--")).strip()


def render_load(kind: str) -> str:
    params = LOAD_PARAMS[kind]
    return load_snapshot_sql().replace("$1", params["$1"]).format_map(params)


def _normal(sql: str) -> str:
    return " ".join(sql.split())


@dataclass
class Script:
    kind: str
    path: Path
    meta: list[str]  # the \set lines
    statements: list[str]  # SQL with pgbench :variables


def parse_script(kind: str) -> Script:
    path = SCRIPTS / f"{kind}.sql"
    meta, body = [], []
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("\\"):
            meta.append(stripped)
        elif stripped and not stripped.startswith("--"):
            body.append(line)
    statements = [s.strip() for s in "\n".join(body).split(";\n") if s.strip()]
    statements = [s.removesuffix(";").strip() for s in statements]
    return Script(kind, path, meta, statements)


def check_scripts() -> list[str]:
    """Scripts whose load statement is not load_snapshot.sql as it is now."""
    stale = []
    for kind in MIX:
        script = parse_script(kind)
        if len(script.statements) != 2 or _normal(script.statements[0]) != _normal(render_load(kind)):
            stale.append(str(script.path.relative_to(Path.cwd()) if script.path.is_relative_to(Path.cwd()) else script.path))
    return stale


def update_scripts() -> list[Path]:
    """Write the current load_snapshot.sql into every script (between its marker and `-- append`)."""
    changed = []
    for kind in MIX:
        path = SCRIPTS / f"{kind}.sql"
        text = path.read_text()
        head, mark, rest = text.partition(_LOAD_MARK)
        marker_line, _, after = rest.partition("\n")
        _, append_mark, append = after.partition("-- append\n")
        if not mark or not append_mark:
            raise ValueError(f"{path}: no '{_LOAD_MARK}' / '-- append' markers")
        new = f"{head}{mark}{marker_line}\n{render_load(kind)};\n{append_mark}{append}"
        if new != text:
            path.write_text(new)
            changed.append(path)
    return changed


_VARIABLE = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def to_positional(sql: str) -> tuple[str, list[str]]:
    """pgbench `:name` variables to asyncpg `$n` parameters (one per distinct name)."""
    names: list[str] = []

    def number(m: re.Match) -> str:
        if m.group(1) not in names:
            names.append(m.group(1))
        return f"${names.index(m.group(1)) + 1}"

    return _VARIABLE.sub(number, sql), names


@dataclass(frozen=True)
class Setting:
    """Where the seeded world is: the same for every driver (each on its clone)."""

    org_id: int
    first_item: int
    nitems: int
    loc_a: int  # and loc_a + 1
    job_base: int = 1000


class Commands:
    """The random command stream of one client connection, as in the pgbench scripts."""

    def __init__(self, setting: Setting, mix: dict[str, int], client: int, seed: int, hot: bool):
        self.s, self.client = setting, client
        self.rng = random.Random(seed * 7919 + client)
        self.kinds, self.weights = list(mix), list(mix.values())
        self.nitems = 2 if hot else setting.nitems

    def next(self) -> tuple[str, dict[str, int]]:
        rng, s = self.rng, self.s
        kind = rng.choices(self.kinds, self.weights)[0]
        loc = s.loc_a + rng.randrange(2)
        qty = rng.randint(1, 3) * rng.choice((-1, 1)) if kind == "adjust" else rng.randint(1, 5)
        values = {"org": s.org_id, "item": s.first_item + rng.randrange(self.nitems), "loc": loc,
                  "loc2": 2 * s.loc_a + 1 - loc, "qty": qty, "job": s.job_base + self.client}
        return kind, values


if __name__ == "__main__":
    for p in update_scripts():
        print(f"updated {p}")
    print("pgbench scripts match ledger/sql/load_snapshot.sql" if not check_scripts() else "still stale?")
