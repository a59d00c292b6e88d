"""Per-run parameter overrides for replay: `--set alert_rules.report_spike_reports=5` or a
TOML file with one table per section (`[alert_rules]`, `report_spike_reports = 5`).

Every section is a frozen params dataclass that a projection takes in its constructor
(or, for `trending`, the window sizes the replay report sums buckets over: trending
windows are a query-time choice, the projection only keeps one-minute buckets). Values
are parsed by the field's declared type and then validated by the dataclass itself
(`__post_init__`), so a bad value fails before a single event is replayed, with one line
that names the section, the field and what was expected.
"""

import dataclasses
import math
import re
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from projections.alert_rules import AlertThresholds
from projections.bot_detector import BotDetectorParams
from projections.comment_moderation import CommentModerationParams
from projections.emerging_trends import TrendParams
from projections.moderation_queue import PriorityWeights
from projections.moderation_risk import ModerationRiskParams
from projections.recommendations import RecommendationParams
from projections.sentiment import SentimentParams
from projections.virality import ViralityParams


@dataclasses.dataclass(frozen=True)
class TrendingWindows:
    """What the report lists of the trending read model: top `top` per kind and window."""

    windows: tuple[int, ...] = (60, 1440)  # minutes; the projection keeps 24 h of buckets
    top: int = 5

    def __post_init__(self) -> None:
        if not self.windows or any(not 1 <= w <= 1440 for w in self.windows):
            raise ValueError("windows must be minutes between 1 and 1440")
        if not 1 <= self.top <= 100:
            raise ValueError("top must be between 1 and 100")


# section -> its params class. The section is the projection's name (registry), except
# `trending`, whose parameters shape the report (see TrendingWindows).
SECTIONS: dict[str, type[Any]] = {
    "alert_rules": AlertThresholds,
    "bot_detector": BotDetectorParams,
    "comment_moderation": CommentModerationParams,
    "emerging_trends": TrendParams,
    "moderation": PriorityWeights,
    "moderation_risk": ModerationRiskParams,
    "recommendations": RecommendationParams,
    "sentiment": SentimentParams,
    "trending": TrendingWindows,
    "virality": ViralityParams,
}
REPORT_SECTIONS = frozenset({"trending"})  # shape the report, not a projection

Overrides = dict[str, dict[str, Any]]  # section -> field -> parsed value


class ParamError(ValueError):
    """A bad override: unknown section or field, or a value of the wrong type or range."""


def _fields(section: str) -> dict[str, Any]:
    cls = SECTIONS.get(section)
    if cls is None:
        raise ParamError(f"unknown parameter section {section!r} (known: {', '.join(SECTIONS)})")
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|min|h|d)?$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(text: str) -> timedelta:
    """`90`, `90s`, `30m`, `1.5h`, `2d` (a bare number is seconds)."""
    m = _DURATION.match(text.strip())
    if not m or float(m.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a positive duration like 90s, 30m, 1.5h")
    return timedelta(seconds=float(m.group(1)) * _UNIT_SECONDS[m.group(2)])


def _optional(kind: Any) -> Any:
    """X for `X | None`, else None."""
    args = typing.get_args(kind)
    if len(args) == 2 and type(None) in args and typing.get_origin(kind) in (
        typing.Union, types.UnionType,
    ):  # fmt: skip
        return next(a for a in args if a is not type(None))
    return None


def _coerce(kind: Any, value: Any) -> Any:
    """`value` (a string from --set, or a TOML value) as a `kind` value."""
    inner = _optional(kind)
    if inner is not None:  # `none` (any case) is None; anything else is an X
        return None if str(value).strip().lower() == "none" else _coerce(inner, value)
    if kind is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "yes", "1", "false", "no", "0"):
            return str(value).lower() in ("true", "yes", "1")
        raise ValueError(f"{value!r} is not true or false")
    if kind is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(f"{value!r} is not an integer")
        return int(str(value).strip()) if isinstance(value, str) else int(value)
    if kind is float:
        if isinstance(value, bool):
            raise ValueError(f"{value!r} is not a number")
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"{value!r} is not a finite number")
        return number
    if kind is str:
        return str(value)
    if kind is timedelta:  # a TOML number or a string like "30m"
        return parse_duration(str(value))
    if typing.get_origin(kind) is tuple:
        (item, _) = typing.get_args(kind)
        items = value if isinstance(value, list) else str(value).split(",")
        return tuple(_coerce(item, v) for v in items if str(v).strip())
    raise ValueError(f"cannot set a field of type {kind}")  # a params class grew a new type


def _describe(kind: Any) -> str:
    inner = _optional(kind)
    if inner is not None:
        return f"{_describe(inner)}, or none"
    if kind is timedelta:
        return "a duration like 90s, 30m, 1.5h"
    if typing.get_origin(kind) is tuple:
        return f"a comma-separated list of {typing.get_args(kind)[0].__name__}"
    return f"a{'n' if kind is int else ''} {getattr(kind, '__name__', kind)}"


def set_value(overrides: Overrides, section: str, name: str, value: Any) -> None:
    fields = _fields(section)
    if name not in fields:
        raise ParamError(f"unknown parameter {section}.{name} (known: {', '.join(sorted(fields))})")
    try:
        parsed = _coerce(fields[name], value)
    except (TypeError, ValueError) as e:
        raise ParamError(
            f"bad value for {section}.{name}: {e} (expected {_describe(fields[name])})"
        ) from None
    overrides.setdefault(section, {})[name] = parsed


def parse_assignments(assignments: Iterable[str], into: Overrides | None = None) -> Overrides:
    """`section.field=value` strings (later ones win) into overrides."""
    overrides: Overrides = into if into is not None else {}
    for text in assignments:
        key, sep, value = text.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not section or not name:
            raise ParamError(f"expected section.field=value, got {text!r}")
        set_value(overrides, section, name, value.strip())
    return overrides


def load_toml(path: Path) -> Overrides:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ParamError(f"cannot read {path}: {e.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ParamError(f"{path} is not valid TOML: {e}") from None
    overrides: Overrides = {}
    for section, table in doc.items():
        if not isinstance(table, dict):
            raise ParamError(f"{path}: {section!r} must be a table like [alert_rules]")
        for name, value in table.items():
            set_value(overrides, section, name, value)
    return overrides


def _check_choices(section: str, params: Any) -> None:
    """Choices the params classes only check when a model is built (or not at all)."""
    if section == "emerging_trends":
        params.new_detector()
    if section == "recommendations" and params.bandit not in BANDITS:
        raise ValueError(f"bandit must be one of {', '.join(BANDITS)}")


BANDITS = ("thompson", "ucb", "epsilon")


def build(overrides: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Section -> params instance (defaults with the overrides), validated."""
    out: dict[str, Any] = {}
    for section, cls in SECTIONS.items():
        changes = dict(overrides.get(section, {}))
        try:
            out[section] = cls(**changes)
            _check_choices(section, out[section])
        except (TypeError, ValueError) as e:
            raise ParamError(f"invalid {section} parameters: {e}") from None
    return out


def jsonable(value: Any) -> Any:
    """A parameter value in the report: durations as seconds, tuples as lists."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, tuple):
        return [jsonable(v) for v in value]
    return value


def describe(overrides: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        section: {name: jsonable(v) for name, v in sorted(fields.items())}
        for section, fields in sorted(overrides.items())
        if fields
    }
