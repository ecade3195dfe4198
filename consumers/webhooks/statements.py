"""The webhooks' SQL statements, loaded once from `consumers/sql/*.sql` by file name."""

from __future__ import annotations

from ledger.statements import load_sql

_SQL = load_sql("consumers")

# The channel deliverers listen on: the emitter and the API notify it (once per
# transaction, never per event) when they record deliveries that are due now.
CHANNEL = "ledger_webhook_deliveries"

# endpoints (the API)
INSERT_WEBHOOK_ENDPOINT = _SQL["insert_webhook_endpoint"]
LIST_WEBHOOK_ENDPOINTS = _SQL["list_webhook_endpoints"]
READ_WEBHOOK_ENDPOINT = _SQL["read_webhook_endpoint"]
UPDATE_WEBHOOK_ENDPOINT = _SQL["update_webhook_endpoint"]
DELETE_WEBHOOK_ENDPOINT = _SQL["delete_webhook_endpoint"]
# deliveries (the API)
COUNT_WEBHOOK_DELIVERIES = _SQL["count_webhook_deliveries"]
LIST_WEBHOOK_DELIVERIES = _SQL["list_webhook_deliveries"]
READ_WEBHOOK_DELIVERY = _SQL["read_webhook_delivery"]
RETRY_WEBHOOK_DELIVERY = _SQL["retry_webhook_delivery"]
INSERT_WEBHOOK_PING = _SQL["insert_webhook_ping"]
# the emitter
READ_WEBHOOK_EMITTER_CHECKPOINT = _SQL["read_webhook_emitter_checkpoint"]
SAVE_WEBHOOK_EMITTER_CHECKPOINT = _SQL["save_webhook_emitter_checkpoint"]
READ_ENABLED_WEBHOOK_ENDPOINTS = _SQL["read_enabled_webhook_endpoints"]
READ_WEBHOOK_ITEM_LEVELS = _SQL["read_webhook_item_levels"]
SAVE_WEBHOOK_ITEM_LEVELS = _SQL["save_webhook_item_levels"]
INSERT_WEBHOOK_DELIVERIES = _SQL["insert_webhook_deliveries"]
# the deliverer
CLAIM_WEBHOOK_DELIVERIES = _SQL["claim_webhook_deliveries"]
RECORD_WEBHOOK_ATTEMPT = _SQL["record_webhook_attempt"]
PRUNE_WEBHOOK_DELIVERIES = _SQL["prune_webhook_deliveries"]
# status
READ_WEBHOOK_STATUS = _SQL["read_webhook_status"]
COUNT_WEBHOOK_DELIVERIES_BY_STATUS = _SQL["count_webhook_deliveries_by_status"]
