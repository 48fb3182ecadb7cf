"""Loading the source systems' CSV files (FORMATS.md): `records_import` in `service.py`.

`from support_portal.core.imports import records_import` works too; the import is lazy so that merely
importing this package (e.g. from the admin) does not load models before the app registry is ready.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    if name in {"records_import", "ImportResult", "FileOutcome"}:
        from support_portal.core.imports import service  # noqa: PLC0415 - lazy on purpose, see above

        return getattr(service, name)
    raise AttributeError(name)
