"""The API's errors, in Toxiproxy's messages and status codes."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error the HTTP API answers with ``{"error": message, "status": status}``."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def to_json(self) -> dict[str, Any]:
        """The error body, as Toxiproxy 2.x sends it."""
        return {"error": self.message, "status": self.status}


def bad_request_body(detail: str) -> ApiError:
    """400 for a body that does not decode into what the endpoint expects."""
    return ApiError(f"bad request body: {detail}", 400)


def missing_field(name: str) -> ApiError:
    """400 for a create request without ``name`` or ``upstream``."""
    return ApiError(f"missing required field: {name}", 400)


def proxy_not_found() -> ApiError:
    """404 for a proxy name the server does not know."""
    return ApiError("proxy not found", 404)


def proxy_exists() -> ApiError:
    """409 for creating a proxy under a name already taken."""
    return ApiError("proxy already exists", 409)


def toxic_not_found() -> ApiError:
    """404 for a toxic name the proxy does not have."""
    return ApiError("toxic not found", 404)


def toxic_exists() -> ApiError:
    """409 for adding a toxic under a name the proxy already has."""
    return ApiError("toxic already exists", 409)
