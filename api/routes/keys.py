"""API keys of the caller's organization. A key may grant only scopes it holds itself."""

from __future__ import annotations

from litestar import Controller, Request, Response, delete, get, post
from litestar.params import JSONBody

from api import shared
from api.responses import ok
from api.routes.params import ItemId as KeyId
from ledger import errors, keys
from schemas.api import ApiKeyCreate, ApiKeyCreated, ApiKeyView, Envelope

MANAGE = {"scope": "keys:manage"}


def view(key: keys.ApiKey) -> ApiKeyView:
    return ApiKeyView(
        key_id=key.key_id, name=key.name, key_prefix=key.key_prefix, scopes=key.scopes,
        allowed_ips=key.allowed_ips, created_at=key.created_at, revoked_at=key.revoked_at,
    )


class ApiKeyController(Controller):
    path = "/api-keys"
    tags = ["api keys"]

    # The key is shown once: an idempotent replay of this response has `key: null`.
    @post("/", opt={**MANAGE, "secret_fields": ("key",)}, operation_id="createApiKey", status_code=201)
    async def create(self, request: Request, pool: shared.Pool, data: JSONBody[ApiKeyCreate]) -> Response[Envelope[ApiKeyCreated]]:
        """Create a key for your organization; the key is in this response only."""
        beyond = sorted(set(data.scopes) - set(request.user.scopes))
        if beyond:
            raise errors.ValidationFailed(f"a key can only grant scopes it holds; not held: {', '.join(beyond)}")
        created, stored = await keys.create_key(
            pool, request.user.org_id, list(data.scopes), name=data.name, allowed_ips=data.allowed_ips
        )
        body = ApiKeyCreated(key=created.key, **{f: getattr(view(stored), f) for f in ApiKeyView.__struct_fields__})
        return ok(request, body, status=201)

    @get("/", opt=MANAGE, operation_id="listApiKeys")
    async def list_keys(self, request: Request, pool: shared.Pool) -> Response[Envelope[list[ApiKeyView]]]:
        """List your organization's keys (prefixes only, never the keys)."""
        found = await keys.list_keys(pool, request.user.org_id)
        return ok(request, [view(k) for k in found])

    @delete("/{key_id:int}", opt=MANAGE, operation_id="revokeApiKey", status_code=200)
    async def revoke(
        self, request: Request, pool: shared.Pool, key_cache: shared.KeyCache, key_id: KeyId
    ) -> Response[Envelope[dict]]:
        """Revoke a key of your organization; it stops working at once here, within seconds elsewhere."""
        await keys.revoke_key(pool, key_id, request.user.org_id)
        key_cache.forget(key_id)
        return ok(request, {"key_id": key_id, "revoked": True})
