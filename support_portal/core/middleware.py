from collections.abc import Callable

from django.db import connection
from django.http import HttpRequest, HttpResponse
from pghistory.middleware import HistoryMiddleware


class AuditContextMiddleware(HistoryMiddleware):
    """Attaches the signed-in user and URL to every audit event written during the request.

    Only on PostgreSQL: the audit trail is database triggers there, and pghistory's context SQL breaks
    SQLite's cursor (the zero-config first run, which has no triggers to attach context to).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        super().__init__(get_response)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if connection.vendor != "postgresql":
            return self.get_response(request)
        response: HttpResponse = super().__call__(request)
        return response
