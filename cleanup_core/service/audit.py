"""The audit trail's records: every event the tool writes is built here, and every event it
reads is turned into an ``AuditEvent`` here.

An event says who did what to which run, the status before and after, and the evidence
(``details``). A clean-up's details keep the run's previous ``completed_at`` exactly as stored,
so a revert can write back what was there.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from cleanup_core.classify import Verdict
from cleanup_core.records import NewEvent, RunFacts, StoredEvent
from cleanup_core.timestamps import parse_timestamp
from cleanup_core.vocabulary import Action, AuditAction, RunStatus

# ``run_events.run_id`` of a launch that has no run yet (a start); its portal names it.
NO_RUN = 0

_LAUNCHED = {Action.RESUME: AuditAction.RESUME_LAUNCHED, Action.START: AuditAction.START_LAUNCHED}
_WORKER_STATUS = {
    AuditAction.START: (None, RunStatus.RUNNING),
    AuditAction.RESUME: (RunStatus.RUNNING, RunStatus.RUNNING),
    AuditAction.RELEASE: (RunStatus.RUNNING, RunStatus.RUNNING),
    AuditAction.COMPLETE: (RunStatus.RUNNING, RunStatus.COMPLETED),
    AuditAction.FAIL: (RunStatus.RUNNING, RunStatus.FAILED),
}


def _encode_raw(value: object) -> object:
    """A stored timestamp as JSON, so revert can write back exactly what was there."""
    if isinstance(value, datetime):
        return {"datetime": value.isoformat()}
    return value


def decode_raw(value: object) -> object:
    """What ``_encode_raw`` wrote, as it was stored."""
    if isinstance(value, dict) and "datetime" in value:
        return datetime.fromisoformat(value["datetime"])
    return value


def _json_value(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


def cleanup_event(
    verdict: Verdict, previous_completed_at: object, *, actor: str, now: datetime, force: bool
) -> NewEvent:
    """A run was marked ``Timeout - Auto-cleaned``: why (the verdict), and what to restore."""
    details = {
        "previous_completed_at": _encode_raw(previous_completed_at),
        "state": verdict.state.value,
        "forced": force,
        "age_threshold_hours": verdict.policy.age_threshold_hours,
        "reasons": [reason.to_dict() for reason in verdict.reasons],
    }
    return NewEvent(
        run_id=verdict.run_id,
        portal_name=verdict.portal_name,
        action=AuditAction.CLEANUP,
        actor=actor,
        from_status=RunStatus.RUNNING,
        to_status=RunStatus.CLEANED,
        created_at=now,
        details=details,
    )


def revert_event(
    cleanup: StoredEvent, restored_completed_at: object, *, actor: str, now: datetime
) -> NewEvent:
    """The clean-up ``cleanup`` was undone."""
    return NewEvent(
        run_id=cleanup.run_id,
        portal_name=cleanup.portal_name,
        action=AuditAction.REVERT,
        actor=actor,
        from_status=cleanup.to_status,
        to_status=cleanup.from_status,
        created_at=now,
        details={"reverted_event_id": cleanup.id, "restored_completed_at": restored_completed_at},
    )


def delete_event(run: RunFacts, *, actor: str, now: datetime) -> NewEvent:
    """A person deleted the run's record: the whole row, as it was."""
    deleted_row = {name: _json_value(value) for name, value in run.stored_row().items()}
    return NewEvent(
        run_id=run.id,
        portal_name=run.portal_name,
        action=AuditAction.DELETE,
        actor=actor,
        from_status=run.status,
        to_status=None,
        created_at=now,
        details={"deleted_row": deleted_row},
    )


def worker_event(
    action: AuditAction,
    *,
    run_id: int,
    portal_name: str,
    worker_id: str,
    now: datetime,
    details: Mapping[str, Any],
) -> NewEvent:
    """A worker started, resumed, completed, failed or released its run."""
    from_status, to_status = _WORKER_STATUS[action]
    return NewEvent(
        run_id=run_id,
        portal_name=portal_name,
        action=action,
        actor=f"worker:{worker_id}",
        from_status=from_status,
        to_status=to_status,
        created_at=now,
        details={"worker_id": worker_id, **details},
    )


def launch_event(
    action: Action,
    *,
    run_id: int | None,
    portal_name: str,
    actor: str,
    now: datetime,
    argv: Sequence[str],
    pid: int | None,
    log_path: Path,
    launch_id: int,
    automatic: bool = False,
    error: str | None = None,
) -> NewEvent:
    """A person, the CLI or the monitor (``automatic``) started the resume_command of a run or
    the start_command of a portal (launch ``launch_id``); ``error``: it could not start."""
    status = RunStatus.RUNNING if run_id else None
    details: dict[str, Any] = {
        "launch_id": launch_id,
        "argv": list(argv),
        "pid": pid,
        "log_path": str(log_path),
        "automatic": automatic,
    }
    if error is not None:
        details["error"] = error
    return NewEvent(
        run_id=run_id or NO_RUN,
        portal_name=portal_name,
        action=_LAUNCHED[action],
        actor=actor,
        from_status=status,
        to_status=status,
        created_at=now,
        details=details,
    )


@dataclass(frozen=True)
class AuditEvent:
    """An audit event as read back. ``run_deleted``: the run was deleted since (a later run
    may have its id); ``revertible``: a clean-up whose run is still in the state it left."""

    id: int
    run_id: int
    portal_name: str | None
    action: AuditAction | str  # a string only for an action a newer version wrote
    actor: str
    from_status: str | None
    to_status: str | None
    created_at: datetime | None
    details: dict[str, Any]
    run_deleted: bool = False
    revertible: bool = False

    @classmethod
    def from_stored(cls, event: StoredEvent, tz: tzinfo) -> AuditEvent:
        try:
            created = parse_timestamp(event.created_at, tz)
        except ValueError:
            created = None
        try:
            details = json.loads(event.details) if event.details else {}
        except ValueError:
            details = {"unreadable": event.details}
        try:
            action: AuditAction | str = AuditAction(event.action)
        except ValueError:
            action = event.action
        return cls(
            id=event.id,
            run_id=event.run_id,
            portal_name=event.portal_name,
            action=action,
            actor=event.actor,
            from_status=event.from_status,
            to_status=event.to_status,
            created_at=created,
            details=details if isinstance(details, dict) else {"value": details},
            run_deleted=event.run_deleted,
            revertible=event.revertible,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "run_id": self.run_id,
            "portal_name": self.portal_name,
            "action": str(self.action),
            "actor": self.actor,
            "from_status": self.from_status,
            "to_status": self.to_status,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "details": self.details,
            "run_deleted": self.run_deleted,
            "revertible": self.revertible,
        }
