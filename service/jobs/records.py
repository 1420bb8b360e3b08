"""What a job is: its state, the options a user chose, its record in Redis, its events.

:class:`JobRecord` is the job's Redis hash, typed. The hash holds flat strings
(:meth:`JobRecord.to_hash`); options and timings are JSON in one field each, times are Unix
seconds, absent values are absent fields. The Lua scripts of :mod:`service.jobs.scripts` write
some fields by name: those names are :class:`JobRecord`'s, and :meth:`JobRecord.from_hash`
refuses any other, so a misspelt one fails loudly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, field_validator

from service.outputs import MESH_FORMATS, OUTPUT_FORMATS, OutputFormat

# The longest track a job may ask for before a person is kept: 40 s at 25 fps. Longer asks
# keep nobody in most videos, after every frame was decoded, detected and tracked for nothing.
MAX_MIN_TRACK_LENGTH = 1000


class JobState(StrEnum):
    """``queued → running → succeeded | failed | cancelled`` (a queued job may also end)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        """Whether the job has ended: nothing about it changes any more."""
        return self in {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}


class JobOptions(BaseModel):
    """What a user may choose for one job."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    smooth: bool = False  # smooth each track's parameters over time
    formats: list[OutputFormat] = Field(default_factory=lambda: list(OUTPUT_FORMATS))
    # Frames a track needs to be estimated; None: the pipeline's default.
    min_track_length: Annotated[int, Field(ge=1, le=MAX_MIN_TRACK_LENGTH)] | None = None
    # The preview draws each person's keypoint landmarks and skeleton over the meshes.
    preview_keypoints: bool = False

    @property
    def stored_formats(self) -> list[OutputFormat]:
        """What a worker writes to the store: the formats asked for, but meshes per frame
        (OBJ, PLY), which the gateway poses on download from ``result.npz``'s parameters with
        the bundle's body (:mod:`service.gateway.frame_meshes`), so ``npz`` stands for them.
        """
        stored = [fmt for fmt in self.formats if fmt not in MESH_FORMATS]
        if "npz" not in stored and any(fmt in MESH_FORMATS for fmt in self.formats):
            stored.append("npz")
        return stored

    @field_validator("formats")
    @classmethod
    def _some_formats_once_each(cls, formats: list[OutputFormat]) -> list[OutputFormat]:
        if not formats:
            raise ValueError(f"choose at least one output format of {OUTPUT_FORMATS}")
        return list(dict.fromkeys(formats))


class JobRecord(BaseModel):
    """Everything the job's hash holds."""

    model_config = ConfigDict(extra="forbid")

    id: str
    state: JobState = JobState.QUEUED
    owner: str  # the id of the API key that made the job, never the key itself
    options: JobOptions = JobOptions()
    created_at: float  # Unix seconds
    started_at: float | None = None  # of the latest attempt
    finished_at: float | None = None
    stage: str = ""  # the pipeline stage running now ("" before the first and after the last)
    done: NonNegativeInt = 0  # the stage's progress: items (frames, tracks) done of total
    total: NonNegativeInt = 0
    timings: dict[str, float] = Field(default_factory=dict)  # stage → seconds
    error_code: str | None = None  # stable, for programs
    error_message: str | None = None  # for a person
    cancel_requested: bool = False
    attempts: NonNegativeInt = 0  # starts so far, the latest included
    worker: str | None = None  # the worker of the latest attempt

    def to_hash(self) -> dict[str, str]:
        """The hash's fields: strings, without the absent ones."""
        fields: dict[str, str] = {}
        for name, value in self.model_dump(mode="json", exclude_none=True).items():
            if isinstance(value, dict):
                fields[name] = json.dumps(value, separators=(",", ":"))
            elif isinstance(value, bool):  # before int: bool is one
                fields[name] = str(int(value))
            else:
                fields[name] = str(value)
        return fields

    @classmethod
    def from_hash(cls, fields: Mapping[bytes | str, bytes | str]) -> Self:
        """The record of a hash as Redis returns it (bytes or str).

        Raises:
            pydantic.ValidationError: a field it does not know, or a value of the wrong kind.
        """
        data: dict[str, object] = {}
        for raw_name, raw_value in fields.items():
            name = _text(raw_name)
            value = _text(raw_value)
            data[name] = json.loads(value) if name in _JSON_FIELDS else value
        return cls.model_validate(data)


_JSON_FIELDS = frozenset({"options", "timings"})


class EventKind(StrEnum):
    """What an event reports."""

    PROGRESS = "progress"  # a stage advanced
    STATE = "state"  # the state changed (or: the state when a listener subscribed)
    DELETED = "deleted"  # the job is gone; nothing follows


class ProgressEvent(BaseModel):
    """One message on a job's channel (JSON), as the gateway forwards it over SSE."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: EventKind
    job_id: str
    state: JobState | None = None  # None once deleted
    stage: str = ""
    done: NonNegativeInt = 0
    total: NonNegativeInt = 0
    error_code: str | None = None
    error_message: str | None = None

    @property
    def final(self) -> bool:
        """Whether nothing follows this event on the channel."""
        return self.kind is EventKind.DELETED or (self.state is not None and self.state.terminal)

    @classmethod
    def of_record(cls, record: JobRecord, kind: EventKind = EventKind.STATE) -> Self:
        """The event that says where ``record`` stands."""
        return cls(
            kind=kind,
            job_id=record.id,
            state=record.state,
            stage=record.stage,
            done=record.done,
            total=record.total,
            error_code=record.error_code,
            error_message=record.error_message,
        )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
