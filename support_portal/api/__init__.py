"""The versioned REST API (/api/v1/, django-ninja): API keys, batch ingest through the import service,
and the routers other apps register (claims and payouts reads, provider callbacks). docs/api.md."""
