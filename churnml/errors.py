"""Errors that churnml reports to its users.

Every error a user can cause is one of these, carries a one-line message that
names the file, row or field and the fix, and maps to an exit code::

    ChurnmlError                    exit 1  base class; never raised bare
    ├── InputError                  exit 2  a file cannot be read at all (missing,
    │                                       empty, not CSV/Parquet, wrong encoding)
    ├── ContractError               exit 1  the data breaks a rule whose policy is "stop"
    │                                       (missing required column, duplicate customer ids)
    ├── ConfigError                 exit 2  a flag, setting or environment variable is wrong
    ├── DataError                   exit 1  the data is readable and valid but cannot serve
    │                                       the request (no customer active on the date, ...)
    ├── ModelError                  exit 1  no model, or a model that does not fit this churnml
    ├── DaskEngineError             exit 1  the Dask cluster could not finish a computation
    │                                       (workers kept dying, the scheduler was lost)
    └── NotAvailableYet             exit 2  a command of the contract that is not built yet

Code that catches ``ChurnmlError`` prints ``str(error)`` and exits with
``error.exit_code``; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class ChurnmlError(Exception):
    """Base class of every error a user can cause."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split("\n")))


class InputError(ChurnmlError):
    """A file could not be read at all."""

    exit_code = 2


class ContractError(ChurnmlError):
    """The data breaks a contract rule whose policy is to stop."""

    exit_code = 1


class ConfigError(ChurnmlError):
    """A flag, setting or environment variable is wrong."""

    exit_code = 2


class DataError(ChurnmlError):
    """Valid data that cannot answer the request as asked."""

    exit_code = 1


class ModelError(ChurnmlError):
    """No model where one is needed, or one this churnml cannot use."""

    exit_code = 1


class DaskEngineError(ChurnmlError):
    """The Dask cluster could not finish a computation (workers died, scheduler lost)."""

    exit_code = 1


class NotAvailableYet(ChurnmlError):
    """A command of the contract that this version does not provide yet."""

    exit_code = 2
