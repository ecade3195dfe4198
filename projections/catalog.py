"""The read models this service keeps: their projections, live or in a rebuild schema."""

from __future__ import annotations

from projections.items import Items
from projections.locations import Locations
from projections.projection import ReadModel
from projections.statements import READ_MODEL_SCHEMA
from projections.stock import Stock
from projections.transactions import Transactions

READ_MODELS = (Items, Stock, Transactions, Locations)
READ_MODEL_NAMES = tuple(model.base_name for model in READ_MODELS)


def read_models(schema: str = READ_MODEL_SCHEMA) -> list[ReadModel]:
    """One projection of each read model, writing to the tables in `schema`."""
    return [model(schema) for model in READ_MODELS]
