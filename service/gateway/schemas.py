"""The documents the gateway answers with (besides files and errors): a job, and health."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from service.jobs import JobOptions, JobState


class Progress(BaseModel):
    """How far the current stage is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stage: str = Field(description="the pipeline stage running now; empty before and after")
    done: int = Field(ge=0, description="items (frames, person-frames, windows) done")
    total: int = Field(ge=0, description="items of the stage in all; 0 when not known yet")


class JobErrorDocument(BaseModel):
    """Why a job failed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(description="stable, for programs")
    message: str = Field(description="for a person")


class Download(BaseModel):
    """One file of a finished job."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="the file's name among the job's results")
    url: str
    size: int = Field(ge=0, description="bytes")
    media_type: str


class JobLinks(BaseModel):
    """Where the job and its results are."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    job: str = Field(description="this document")
    events: str = Field(description="its progress as server-sent events")
    downloads: list[Download] = Field(description="its files, once it succeeded")
    meshes: dict[str, str] = Field(
        description="URI templates (RFC 6570) of one person's mesh in one frame, by format "
        "(obj, ply); the tracks and their frames are listed in result.json"
    )


class JobDocument(BaseModel):
    """A job: where it stands, and its results once it succeeded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    state: JobState
    progress: Progress
    options: JobOptions
    created_at: float = Field(description="Unix seconds")
    started_at: float | None = Field(description="Unix seconds, of the latest attempt")
    finished_at: float | None = Field(description="Unix seconds")
    timings: dict[str, float] = Field(description="seconds per pipeline stage")
    attempts: int = Field(ge=0, description="times a worker started it")
    error: JobErrorDocument | None = Field(description="why it failed (state failed)")
    links: JobLinks


class JobList(BaseModel):
    """An API key's jobs, newest first."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    jobs: list[JobDocument]


class Health(BaseModel):
    """The process answers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: str = "alive"


class Readiness(BaseModel):
    """Redis answers and (unless the gateway is told not to ask) workers run: jobs will be
    processed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: str = "ready"
    workers: list[str] | None = Field(
        description="the workers that answered the ping; null where the gateway does not ask "
        "(`gateway.readyz_requires_worker` off)"
    )
