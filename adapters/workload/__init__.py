"""Synthetic workloads: a seeded, deterministic simulation of ReelPulse traffic and drivers
that apply it to the applications directly or to the REST API."""

from adapters.workload.drivers import DriveStats, drive_application, drive_http
from adapters.workload.generator import generate
from adapters.workload.model import (
    AppealCase,
    AutoFlagVideo,
    BotBurst,
    Command,
    DecideCase,
    EngagementBatch,
    GroundTruth,
    PublishVideo,
    RegisterCreator,
    ReportVideo,
    ReportWave,
    ResolveAppeal,
    Workload,
    WorkloadConfig,
)

__all__ = [
    "AppealCase",
    "AutoFlagVideo",
    "BotBurst",
    "Command",
    "DecideCase",
    "DriveStats",
    "EngagementBatch",
    "GroundTruth",
    "PublishVideo",
    "RegisterCreator",
    "ReportVideo",
    "ReportWave",
    "ResolveAppeal",
    "Workload",
    "WorkloadConfig",
    "drive_application",
    "drive_http",
    "generate",
]
