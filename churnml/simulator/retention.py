"""The simulated retention team: whom it picks each day, whom it holds out, what calls give.

From its start day the team picks, every day, ``retention_daily_share`` of the active
customers: most by a simple risk rule of its own (what a CRM screen shows: an open case
and how often the customer has contacted about it, an escalation, a new customer, the
cheapest plan), ``retention_random_share`` of them at random among the customers it may
pick. Nobody is picked again within ``retention_cooldown_days`` (more than the horizon),
so a ``control`` row's promise that nobody called holds. Of the picks a random
``retention_control_share`` is held out as ``control``; the rest are called through
:func:`churnml.simulator.dynamics.retention_call`, which draws the outcome from the
customer's state and changes the hidden state the call acts through.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from churnml.simulator.dynamics import ESCALATED, Population, retention_call
from churnml.simulator.params import SimulationParams

TREATED, CONTROL = 0, 1  # indices into churnml.contract.GROUPS
NO_OUTCOME = -1


@dataclass
class RetentionLog:
    """The team's picks, in the order made (one entry per day it acted)."""

    days: list[np.ndarray] = field(default_factory=list)
    customers: list[np.ndarray] = field(default_factory=list)
    groups: list[np.ndarray] = field(default_factory=list)
    outcomes: list[np.ndarray] = field(default_factory=list)

    def __len__(self) -> int:
        return int(sum(len(c) for c in self.customers))

    def column(self, name: str) -> np.ndarray:
        parts = getattr(self, name)
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int32)


def team_risk(pop: Population, day: int) -> np.ndarray:
    """The team's own risk rule: points for what its CRM screen shows (not the hidden
    state): an open case, the contacts on it, an escalation, tenure under 90 days, the
    cheapest plan. Deliberately simple; it is the rule a team without a model uses."""
    open_case = pop.case_open
    contacts = np.where(open_case, np.minimum(pop.case_contacts, 5), 0)
    return (
        2.0 * open_case
        + 0.5 * contacts
        + 0.5 * (open_case & (pop.case_status == ESCALATED))
        + 1.0 * ((day - pop.signup_day) < 90)
        + 0.3 * (pop.plan == 0)
    )


class RetentionTeam:
    """Acts once a day from ``start_day``; keeps its log in :attr:`log`."""

    def __init__(
        self,
        n_customers: int,
        start_day: int,
        horizon_days: int,
        params: SimulationParams,
        rng: np.random.Generator,
    ) -> None:
        self.start_day = start_day
        # a control row promises no call from its day to the horizon after it, inclusive
        self.cooldown = max(params.retention_cooldown_days, horizon_days + 1)
        self.params = params
        self.rng = rng
        self.last_pick = np.full(n_customers, -(2**30), dtype=np.int64)
        self.log = RetentionLog()

    def act(self, pop: Population, day: int) -> None:
        """Pick today's customers, hold some out, call the rest (changing ``pop``)."""
        if day < self.start_day:
            return
        p, rng = self.params, self.rng
        active = (pop.signup_day <= day) & (pop.churn_day > day)
        eligible = np.flatnonzero(active & (day - self.last_pick >= self.cooldown))
        wanted = int(round(p.retention_daily_share * int(active.sum())))
        n_picks = min(wanted, len(eligible))
        if n_picks == 0:
            return
        n_random = int(round(p.retention_random_share * n_picks))
        # ties in the team's points are broken at random
        score = team_risk(pop, day)[eligible] + rng.random(len(eligible)) * 0.01
        by_risk = eligible[np.argsort(-score, kind="stable")[: n_picks - n_random]]
        rest = np.setdiff1d(eligible, by_risk, assume_unique=True)
        at_random = rng.choice(rest, size=min(n_random, len(rest)), replace=False)
        picks = np.sort(np.concatenate([by_risk, at_random]))
        control = rng.random(len(picks)) < p.retention_control_share
        outcome = np.full(len(picks), NO_OUTCOME, dtype=np.int8)
        outcome[~control] = retention_call(pop, picks[~control], day, p, rng)
        self.last_pick[picks] = day
        self.log.days.append(np.full(len(picks), day, dtype=np.int32))
        self.log.customers.append(picks.astype(np.int32))
        self.log.groups.append(np.where(control, CONTROL, TREATED).astype(np.int8))
        self.log.outcomes.append(outcome)
