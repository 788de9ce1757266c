"""The integration tests use the session's gateway (`tests/gateway.py`, registered in `tests/conftest.py`)."""

from tests.gateway import Gateway, Reply

__all__ = ["Gateway", "Reply"]
