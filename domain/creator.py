"""Creator: a publishing account, its profile, strikes and suspension."""

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidValue, InvariantViolation
from domain.values import check_event_time, check_handle, check_text

STRIKES_TO_SUSPEND = 3
UNKNOWN_REGION = "ZZ"  # ISO 3166 user-assigned code for "unknown"


class Creator(Aggregate):
    class Registered(Aggregate.Created):
        # v1 (first release) had no region; v2 added it.
        class_version = 2
        handle: str
        display_name: str
        region: str
        occurred_at: datetime

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["region"] = UNKNOWN_REGION

    class ProfileUpdated(Aggregate.Event):
        display_name: str
        region: str
        occurred_at: datetime

    class StrikeIssued(Aggregate.Event):
        case_id: UUID
        reason: str
        occurred_at: datetime

    class StrikeWithdrawn(Aggregate.Event):
        case_id: UUID
        occurred_at: datetime

    class Suspended(Aggregate.Event):
        # v2 added `cause`; v1 automatic suspensions had the reason "N active strikes".
        class_version = 2
        reason: str
        cause: str  # "strikes" (automatic) or "manual"
        occurred_at: datetime

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["cause"] = "strikes" if state["reason"].endswith("active strikes") else "manual"

    class Reinstated(Aggregate.Event):
        reason: str
        occurred_at: datetime

    @event(Registered)
    def __init__(self, handle: str, display_name: str, region: str, occurred_at: datetime) -> None:
        self.handle = handle
        self.display_name = display_name
        self.region = region
        self.registered_at = occurred_at
        self.strike_cases: list[UUID] = []  # cases with an active strike, oldest first
        self.suspended = False
        self.suspended_for_strikes = False  # a manual suspension is not lifted by appeals

    # -- factory -------------------------------------------------------------------------
    @classmethod
    def register(
        cls,
        *,
        creator_id: UUID,
        handle: str,
        display_name: str,
        region: str,
        occurred_at: datetime,
    ) -> "Creator":
        return cls._create(
            cls.Registered,
            id=creator_id,
            handle=check_handle(handle),
            display_name=check_text("display_name", display_name, max_length=80),
            region=_check_region(region),
            occurred_at=check_event_time(occurred_at),
        )

    # -- queries -------------------------------------------------------------------------
    @property
    def active_strikes(self) -> int:
        return len(self.strike_cases)

    def ensure_can_publish(self) -> None:
        if self.suspended:
            raise InvariantViolation("a suspended creator cannot publish", code="creator_suspended")

    # -- commands ------------------------------------------------------------------------
    def update_profile(self, *, display_name: str, region: str, occurred_at: datetime) -> None:
        self._profile_updated(
            display_name=check_text("display_name", display_name, max_length=80),
            region=_check_region(region),
            occurred_at=check_event_time(occurred_at),
        )

    def issue_strike(self, *, case_id: UUID, reason: str, occurred_at: datetime) -> bool:
        """Record a strike for a moderation case; the third active strike suspends.

        Returns False (and records nothing) when this case already has a strike, so a
        redelivered decision never strikes twice.
        """
        if case_id in self.strike_cases:
            return False
        check_event_time(occurred_at)
        self._strike_issued(
            case_id=case_id,
            reason=check_text("reason", reason, multiline=True),
            occurred_at=occurred_at,
        )
        if self.active_strikes >= STRIKES_TO_SUSPEND and not self.suspended:
            self._suspended(
                reason=f"{self.active_strikes} active strikes",
                cause="strikes",
                occurred_at=occurred_at,
            )
        return True

    def withdraw_strike(self, *, case_id: UUID, occurred_at: datetime) -> bool:
        """Withdraw the strike of an overturned case; reinstate if below the threshold."""
        if case_id not in self.strike_cases:
            return False
        check_event_time(occurred_at)
        self._strike_withdrawn(case_id=case_id, occurred_at=occurred_at)
        if self.suspended_for_strikes and self.active_strikes < STRIKES_TO_SUSPEND:
            self._reinstated(reason="strike withdrawn on appeal", occurred_at=occurred_at)
        return True

    def suspend(self, *, reason: str, occurred_at: datetime) -> None:
        if self.suspended:
            raise InvariantViolation("creator is already suspended", code="already_suspended")
        self._suspended(
            reason=check_text("reason", reason, multiline=True),
            cause="manual",
            occurred_at=check_event_time(occurred_at),
        )

    def reinstate(self, *, reason: str, occurred_at: datetime) -> None:
        if not self.suspended:
            raise InvariantViolation("creator is not suspended", code="not_suspended")
        self._reinstated(
            reason=check_text("reason", reason, multiline=True),
            occurred_at=check_event_time(occurred_at),
        )

    # -- state changes (re-run on every replay: no guards, no clock) ----------------------
    @event(ProfileUpdated)
    def _profile_updated(self, display_name: str, region: str, occurred_at: datetime) -> None:
        self.display_name = display_name
        self.region = region

    @event(StrikeIssued)
    def _strike_issued(self, case_id: UUID, reason: str, occurred_at: datetime) -> None:
        self.strike_cases.append(case_id)

    @event(StrikeWithdrawn)
    def _strike_withdrawn(self, case_id: UUID, occurred_at: datetime) -> None:
        self.strike_cases.remove(case_id)

    @event(Suspended)
    def _suspended(self, reason: str, cause: str, occurred_at: datetime) -> None:
        self.suspended = True
        self.suspended_for_strikes = cause == "strikes"

    @event(Reinstated)
    def _reinstated(self, reason: str, occurred_at: datetime) -> None:
        self.suspended = False
        self.suspended_for_strikes = False


def _check_region(region: str) -> str:
    region = region.strip().upper()
    if not (len(region) == 2 and region.isascii() and region.isalpha()):
        raise InvalidValue("region must be an ISO 3166 alpha-2 code", code="invalid_region")
    return region
