"""JSON request bodies, decoded strictly, with their faults as the API's error codes.

Litestar converts a handler's arguments leniently (`strict=False`: right for query
strings, where "5" must become 5), which in a body would let `{"quantity": "5"}` or
`{"location_id": "1"}` through as numbers; and msgspec's UnicodeDecodeError (bytes that
are not UTF-8) and RecursionError (absurd nesting) escape its parsing as 500s. So every
handler's JSON body is first decoded here, strictly (`strict_body`, a `before_request`
hook), and seed 004's handlers, which read their bodies themselves, use `decode` too.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Request

from api.errors import InvalidJson
from ledger import errors

_MISSING = re.compile(r"^Object missing required field `(\w+)`$")
_AT = re.compile(r" - at `\$\.?(.*)`$")


def decode(raw: bytes, body_type: Any, *, quantity_code: str | None = None, lenient: bool = False) -> Any:
    """`raw` as `body_type`. A required top-level field left out is `missing_<field>`;
    a quantity that is not a valid integer is `quantity_code` when given (seed 004);
    anything else is `validation_failed` with `details`.

    `lenient` ignores fields the body type does not know (seed 004's item endpoints: an
    integration may send back the whole item it read, `id` and timestamps included).
    """
    try:
        if not lenient:
            return msgspec.json.decode(raw, type=body_type)
        decoded = msgspec.json.decode(raw)
        if not isinstance(decoded, dict):
            raise msgspec.ValidationError("Expected `object`, got `" + type(decoded).__name__ + "`")
        known = {k: v for k, v in decoded.items() if k in body_type.__struct_fields__}
        return msgspec.convert(known, body_type)
    except msgspec.ValidationError as exc:
        raise _refusal(str(exc), quantity_code) from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        raise InvalidJson() from None


def _refusal(message: str, quantity_code: str | None) -> errors.ValidationFailed:
    at = _AT.search(message)
    field = at.group(1) if at else None
    if missing := _MISSING.match(message):  # at the top level only: nested lines are details
        name = missing.group(1)
        code = quantity_code if name == "quantity" and quantity_code else f"missing_{name}"
        return errors.ValidationFailed(f"{name} was not provided", code=code)
    if field == "quantity" and quantity_code:
        return errors.ValidationFailed(f"quantity is not valid: {message}", code=quantity_code)
    details = [{"field": field, "source": "body", "message": message}]
    return errors.ValidationFailed(f"Validation failed: {message}", details=details)


async def strict_body(request: Request) -> None:
    """`before_request` hook: the handler's JSON body (its `data`), decoded strictly before
    litestar decodes it leniently. An empty body is left to litestar (optional bodies)."""
    field = request.route_handler.parsed_fn_signature.parameters.get("data")
    if field is None:
        return None
    raw = await request.body()
    if raw:
        decode(raw, field.annotation)
    return None
