"""The consumers' SQL statements, loaded once from `consumers/sql/*.sql` by file name."""

from __future__ import annotations

from ledger.statements import load_sql

_SQL = load_sql("consumers")

CLAIM_RELAY_CHECKPOINT = _SQL["claim_relay_checkpoint"]
SAVE_RELAY_CHECKPOINT = _SQL["save_relay_checkpoint"]
RESET_RELAY_CHECKPOINT = _SQL["reset_relay_checkpoint"]
READ_RELAY_STATUS = _SQL["read_relay_status"]
