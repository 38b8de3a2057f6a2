"""``churnml risk-list``: the day's list of customers to call, on the local or Dask engine;
``--withdraw DATE`` takes a wrong list back (the list before it is current again).

``ListJob`` is the list as a command makes it (``churnml run`` too): what is checked and
loaded before the tables are read (the export path, the model and its ranking, the store),
then the list of a day of an engine's tables (``serving.risklist``), with the retention
team's contacts the engine read and checked (``churnml.validation``), exported.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from churnml.cli.common import (
    CommandSettings,
    CustomersFile,
    EngineFlag,
    InteractionsFile,
    ModelUri,
    QuietFlag,
    SchedulerFlag,
    StoreUrl,
    StrictFlag,
    command_settings,
    latest_day,
    on_cluster,
    opened,
    parse_date,
)
from churnml.progress import Reporter
from serving.settings import MAX_CONTROL_SHARE, RANK_BY, RANK_BY_DEFAULT_WORDS, RiskListSettings

if TYPE_CHECKING:
    from collections.abc import Callable

    from churnml.engines import Engine
    from serving.loading import ServedModel
    from serving.risklist import RiskListResult
    from serving.store import RiskListStore

RankBy = enum.StrEnum("RankBy", {name: name for name in RANK_BY})


AsOf = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="Score the customers active on D (YYYY-MM-DD). Default: the latest contact "
        "day in the data. A D more than --grace-days after it is refused.",
    ),
]

GraceDays = Annotated[
    int | None,
    typer.Option(
        "--grace-days",
        min=0,
        help="Days --as-of may be after the data's last contact day "
        f"(default: {RiskListSettings.freshness_grace_days}; CHURNML_FRESHNESS_GRACE_DAYS).",
    ),
]

WithdrawDay = Annotated[
    str | None,
    typer.Option(
        "--withdraw",
        metavar="DATE",
        help="Withdraw the stored list of DATE (YYYY-MM-DD) instead of making one: it is no "
        "longer served, the list before it is current again; recorded in the runs table.",
    ),
]

WithdrawReason = Annotated[
    str | None,
    typer.Option(
        "--reason", help="With --withdraw: why, kept with the withdrawal (up to 500 characters)."
    ),
]

ExportFile = Annotated[
    Path | None,
    typer.Option(
        "--out",
        help="Also export the list (.csv or .parquet): the columns of GET /risk-list.csv, "
        "probabilities to 4 significant digits, money to 2 decimals in CHURNML_CURRENCY.",
    ),
]


OutScope = enum.StrEnum("OutScope", {"all": "all", "list": "list"})


ExportScope = Annotated[
    OutScope | None,
    typer.Option(
        "--out-scope",
        help="With --out: all (everyone scored that day) or list (the customers on the "
        "list, as GET /risk-list.csv gives by default) "
        f"(default: {RiskListSettings.export_scope}).",
    ),
]

Capacity = Annotated[
    int | None,
    typer.Option(
        "--capacity",
        min=1,
        help="Customers the team can call a day "
        f"(default: {RiskListSettings.capacity}; CHURNML_CAPACITY).",
    ),
]

RankByFlag = Annotated[
    RankBy | None,
    typer.Option(
        "--rank-by",
        help="saved-revenue (the revenue a call keeps: call effect x monthly revenue x "
        "months; needs a model with a call-effect head), revenue (expected revenue at risk) "
        f"or probability (default: {RANK_BY_DEFAULT_WORDS}; CHURNML_RANK_BY).",
    ),
]

MinCallEffect = Annotated[
    float | None,
    typer.Option(
        "--min-call-effect",
        min=-1.0,
        max=1.0,
        help="Ranking by saved revenue: customers whose call effect is below this are not "
        "picked, however risky "
        f"(default: {RiskListSettings.min_call_effect}; CHURNML_MIN_CALL_EFFECT).",
    ),
]

ControlShare = Annotated[
    float | None,
    typer.Option(
        "--control-share",
        min=0.0,
        max=MAX_CONTROL_SHARE,
        help="Share of the day's picks held out as a random control group, not to be "
        "called (the same split when the day is made again; 0: none) "
        f"(default: {RiskListSettings.control_share}; CHURNML_CONTROL_SHARE).",
    ),
]

Months = Annotated[
    float | None,
    typer.Option(
        "--months",
        min=0.01,
        help="Months of revenue at risk: probability x monthly revenue x months "
        f"(default: {RiskListSettings.revenue_months}; CHURNML_REVENUE_MONTHS).",
    ),
]

RetentionContactsFile = Annotated[
    Path | None,
    typer.Option(
        "--retention-contacts",
        "--suppress",
        help="The retention team's picks and outcomes (customer_id, contacted_at, group, "
        "outcome, channel; --suppress is the older name): customers treated in the last "
        "--suppress-days days, or held out as controls within the model's horizon, are "
        "marked and not called; a call-effect head reads each customer's retention "
        "history from it. Checked as validate checks it. Default: the configured source "
        "(CHURNML_RETENTION_CONTACTS, else the sample world's when both tables are the "
        "sample's).",
    ),
]

SuppressDays = Annotated[
    int | None,
    typer.Option(
        "--suppress-days",
        min=0,
        help="Days a contact suppresses a customer "
        f"(default: {RiskListSettings.suppress_days}; CHURNML_SUPPRESS_DAYS).",
    ),
]


def risk_list(
    as_of: AsOf = None,
    customers: CustomersFile = None,
    interactions: InteractionsFile = None,
    out: ExportFile = None,
    out_scope: ExportScope = None,
    capacity: Capacity = None,
    rank_by: RankByFlag = None,
    min_call_effect: MinCallEffect = None,
    control_share: ControlShare = None,
    months: Months = None,
    retention_contacts: RetentionContactsFile = None,
    suppress_days: SuppressDays = None,
    grace_days: GraceDays = None,
    store: StoreUrl = None,
    model: ModelUri = None,
    engine: EngineFlag = None,
    scheduler: SchedulerFlag = None,
    strict: StrictFlag = False,
    quiet: QuietFlag = False,
    withdraw: WithdrawDay = None,
    reason: WithdrawReason = None,
) -> None:
    """Write the day's list of customers to call, with reasons, actions and changes."""
    if withdraw is not None or reason is not None:
        making = {
            "--as-of": as_of,
            "--customers": customers,
            "--interactions": interactions,
            "--out": out,
            "--out-scope": out_scope,
            "--capacity": capacity,
            "--rank-by": rank_by,
            "--min-call-effect": min_call_effect,
            "--control-share": control_share,
            "--months": months,
            "--retention-contacts": retention_contacts,
            "--suppress-days": suppress_days,
            "--grace-days": grace_days,
            "--model": model,
            "--engine": engine,
            "--scheduler": scheduler,
            "--strict": strict or None,
        }
        _withdraw(withdraw, reason, store, [flag for flag, v in making.items() if v is not None])
        return
    settings = command_settings(
        customers=customers,
        interactions=interactions,
        engine=engine,
        scheduler=scheduler,
        strict=strict,
        model_uri=model,
        risk_store=store,
        retention_contacts=retention_contacts,
        lists={
            "capacity": capacity,
            "rank_by": rank_by.value if rank_by else None,
            "min_call_effect": min_call_effect,
            "control_share": control_share,
            "revenue_months": months,
            "suppress_days": suppress_days,
            "freshness_grace_days": grace_days,
        },
    )
    day = parse_date(as_of, "--as-of")
    reporter = Reporter(quiet=quiet)
    if out_scope is not None and out is None:
        from churnml.errors import ConfigError

        raise ConfigError("--out-scope is for the export: add --out FILE (.csv or .parquet)")
    scope = out_scope.value if out_scope else settings.lists.export_scope
    job = ListJob.prepare(settings, reporter, out=out, scope=scope)
    with opened(settings.core, reporter) as chosen:
        result = job.make(chosen, day, reporter)
    typer.echo(result.summary())


MAX_REASON_CHARS = 500


def _withdraw(
    day_text: str | None, reason: str | None, store: str | None, making: list[str]
) -> None:
    """``--withdraw DATE``: the stored list of DATE withdrawn, or one line why not."""
    import sqlalchemy as sa

    from churnml.errors import ConfigError
    from serving.store import RiskListStore, safe_url, store_url

    if day_text is None:
        raise ConfigError("--reason goes with --withdraw DATE (the list to withdraw)")
    if making:
        raise ConfigError(
            f"--withdraw makes no list: drop {', '.join(making)}, or run the list without "
            "--withdraw"
        )
    if reason is not None and len(reason) > MAX_REASON_CHARS:
        raise ConfigError(f"--reason: {len(reason)} characters; keep it to {MAX_REASON_CHARS}")
    day = parse_date(day_text, "--withdraw")
    core = command_settings(risk_store=store, tracking=False).core
    url = store_url(core.home, core.risk_store)
    try:
        lists = RiskListStore(url, create=False)
        try:
            done = lists.withdraw(f"{day}", by=_who(), reason=reason)
        finally:
            lists.engine.dispose()
    except sa.exc.SQLAlchemyError as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        raise ConfigError(f"risk-list store {safe_url(url)}: {first}") from None
    typer.echo(done.summary())


def _who() -> str:
    """Who asks, for the runs table: the login name of this process."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        return "unknown"


@dataclass(frozen=True)
class ListJob:
    """A day's list as a command makes it; ``prepare`` does every check and load that
    needs no table, so a mistake stops the command before any work."""

    settings: CommandSettings
    served: ServedModel
    store: RiskListStore
    out: Path | None = None
    scope: str = "all"  # of the export: everyone scored, or the list

    @classmethod
    def prepare(
        cls,
        settings: CommandSettings,
        reporter: Reporter,
        *,
        out: Path | None = None,
        scope: str = "all",
    ) -> ListJob:
        from churnml.io import check_output_path
        from serving.loading import load_served_model
        from serving.risklist import choose_ranking
        from serving.store import RiskListStore, store_url

        if out is not None:
            check_output_path(out)
        with reporter.step(f"loading {settings.model_uri}"):
            served = load_served_model(settings.model_uri, settings.core.effective_tracking_uri)
        choose_ranking(settings.lists.rank_by, served.model)  # --rank-by the model can serve
        store = RiskListStore(store_url(settings.core.home, settings.core.risk_store))
        return cls(settings, served, store, out, scope)

    def make(
        self,
        engine: Engine,
        day: dt.date | None,
        reporter: Reporter,
        report: Callable[[str], None] | None = None,
    ) -> RiskListResult:
        """The list of ``day`` (default: the latest contact day) of ``engine``'s tables,
        stored, and exported when asked; ``report`` hears the list's steps."""
        from serving.export import write_export
        from serving.risklist import export_frame, make_risk_list_on

        if day is None:
            missing = f"{self.settings.core.interactions}: no contacts; pass --as-of YYYY-MM-DD"
            day = latest_day(engine, missing)
        contacts = self.settings.core.retention_contacts
        with reporter.step(f"making the risk list of {day}{on_cluster(engine)}"):
            result = make_risk_list_on(
                engine,
                day,
                self.served,
                self.store,
                self.settings.lists,
                retention_contacts=engine.tables().retention_contacts,
                retention_contacts_name=str(contacts.name if contacts else "retention_contacts"),
                report=report,
            )
        if self.out is not None:
            currency = self.settings.lists.currency
            write_export(export_frame(result, currency=currency, scope=self.scope), self.out)
            result.notes.append(f"exported to {self.out}")
        return result
