"""A database tracking store (postgresql://, mysql://, mssql://) whose SQLAlchemy driver is not installed: one line
naming the package to install, not the ModuleNotFoundError SQLAlchemy raises from deep inside MLflow's first request.

Shared by the commands that read a store and by the services that look the registry up."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from contextlib import contextmanager

from mlexp.errors import DataError

# the module each SQLAlchemy dialect of MLflow's SQL stores imports -> the pip package that provides it
PACKAGES = {
    "psycopg": "psycopg[binary]",
    "psycopg2": "psycopg2-binary",
    "pg8000": "pg8000",
    "asyncpg": "asyncpg",
    "MySQLdb": "mysqlclient",
    "pymysql": "PyMySQL",
    "mysql": "mysql-connector-python",
    "pyodbc": "pyodbc",
    "pymssql": "pymssql",
}
NOT_INSTALLED = "the tracking store's database driver is not installed"
# SQLAlchemy's packages that import a driver: a dialect's own, or the connectors dialects share (pyodbc)
IMPORTED_IN = ("sqlalchemy/dialects/", "sqlalchemy/connectors/")


def missing_driver(error: BaseException) -> str | None:
    """The line for SQLAlchemy failing to import a database dialect's driver; None for any other error."""
    if not isinstance(error, ImportError) or not _raised_by_a_dialect(error):
        return None
    module = (error.name or "").split(".")[0]
    package = shlex.quote(PACKAGES.get(module, module)) if module else "<the driver's package>"
    # to SQLAlchemy a bare postgresql:// means psycopg 3, which mlexp does not install
    other = " (postgresql+psycopg2://... uses psycopg2, installed with mlexp)" if module == "psycopg" else ""
    return f"{NOT_INSTALLED} ({error}); install it (pip install {package}), or name one that is in tracking.uri{other}"


@contextmanager
def driver_checked() -> Iterator[None]:
    """Opening a store inside: a driver that is not installed raises a DataError of one line (missing_driver)."""
    try:
        yield
    except ImportError as error:
        line = missing_driver(error)
        if line is None:
            raise
        raise DataError(line) from None


def _raised_by_a_dialect(error: ImportError) -> bool:
    frame = error.__traceback__
    while frame is not None:
        if any(folder in frame.tb_frame.f_code.co_filename.replace("\\", "/") for folder in IMPORTED_IN):
            return True
        frame = frame.tb_next
    return False
