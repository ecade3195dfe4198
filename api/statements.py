"""The API's SQL statements, loaded once from `api/sql/*.sql` by file name."""

from __future__ import annotations

from ledger.statements import load_sql

_SQL = load_sql("api")

CLAIM_IDEMPOTENCY_KEY = _SQL["claim_idempotency_key"]
READ_IDEMPOTENCY_RECORD = _SQL["read_idempotency_record"]
COMPLETE_IDEMPOTENCY_RECORD = _SQL["complete_idempotency_record"]
RELEASE_IDEMPOTENCY_KEY = _SQL["release_idempotency_key"]
RETAKE_IDEMPOTENCY_KEY = _SQL["retake_idempotency_key"]
