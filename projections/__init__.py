"""Read models: pure functions of the ledger, kept current by projectors, rebuildable.

The door of the package: projectors and their projections, checkpoints and the
read-after-write wait, the status report, and (module `queries`, with the Structs it
returns) the reads the API serves.
"""

from projections import queries
from projections.catalog import READ_MODEL_NAMES, READ_MODELS, read_models
from projections.checkpoints import CheckpointMoved, wait_for_position
from projections.items import Items
from projections.locations import Locations
from projections.models import Item, JobHolding, JobView, Location, StockEntry, StockSummaryLine, Transaction
from projections.projection import Projection, ReadModel
from projections.projector import Projector
from projections.statements import READ_MODEL_SCHEMA
from projections.status import ProjectionStatus, projection_status
from projections.stock import Stock
from projections.transactions import Transactions

__all__ = [
    "READ_MODELS",
    "READ_MODEL_NAMES",
    "READ_MODEL_SCHEMA",
    "CheckpointMoved",
    "Item",
    "Items",
    "JobHolding",
    "JobView",
    "Location",
    "Locations",
    "Projection",
    "ProjectionStatus",
    "Projector",
    "ReadModel",
    "StockEntry",
    "StockSummaryLine",
    "Stock",
    "Transaction",
    "Transactions",
    "queries",
    "projection_status",
    "read_models",
    "wait_for_position",
]
