"""`reelpulse keys`: API keys (create, list, revoke) and signed test tokens."""

import sys
from typing import Annotated
from uuid import UUID

import typer
from rich.console import Console
from rich.table import Table

from adapters.auth import jwt as tokens
from adapters.auth.keys import ApiKeyStore
from adapters.auth.principal import Role
from adapters.auth.service import DEFAULT_AUDIENCE
from adapters.readmodel.db import create_read_engine, read_model_url, upgrade
from adapters.settings import Settings

app = typer.Typer(help="API keys and access tokens.", no_args_is_help=True)
console = Console(stderr=True)


def _store() -> ApiKeyStore:
    settings = Settings()
    engine = create_read_engine(read_model_url(settings.database_url, settings.read_database_url))
    upgrade(engine)  # the api_keys table (Alembic 0007)
    return ApiKeyStore(engine)


@app.command("create")
def create(
    role: Annotated[Role, typer.Option(help="ingest, creator, moderator, analyst or admin")],
    subject: Annotated[
        UUID | None, typer.Option(help="The creator id (required for role creator)")
    ] = None,
    label: Annotated[str, typer.Option(help="What the key is for")] = "",
) -> None:
    """Create a key. It is printed once (stdout); only its hash is stored."""
    try:
        raw, info = _store().create(role, subject_id=subject, label=label)
    except ValueError as e:
        console.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from None
    print(raw)
    console.print(f"created key {info.key_id} (role {info.role.value}); store it now")


@app.command("list")
def list_keys(
    all: Annotated[bool, typer.Option("--all", help="Include revoked keys")] = False,
) -> None:
    """Key ids, roles, subjects and labels (never the keys themselves)."""
    keys = _store().list(include_revoked=all)
    table = Table("key id", "role", "subject", "label", "created", "revoked")
    for k in keys:
        table.add_row(
            k.key_id, k.role.value, str(k.subject_id or ""), k.label,
            k.created_at.isoformat(timespec="seconds"),
            k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else "",
        )  # fmt: skip
    Console(width=None if sys.stdout.isatty() else 200).print(table)  # ids never cut
    console.print(f"{len(keys)} key(s)")


@app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="The key id (rp_<key id>_...)")]) -> None:
    """Revoke a key; servers stop accepting it within seconds."""
    if not _store().revoke(key_id):
        console.print(f"[red]no active key {key_id}[/red]")
        raise typer.Exit(1)
    console.print(f"revoked {key_id}")


@app.command("token")
def token(
    role: Annotated[Role, typer.Option(help="The token's role")],
    subject: Annotated[str, typer.Option(help="Who the token is for (sub claim)")],
    creator: Annotated[UUID | None, typer.Option(help="creator_id claim (role creator)")] = None,
    ttl: Annotated[int, typer.Option(help="Seconds until it expires", min=1)] = 3600,
) -> None:
    """Sign a JWT with REELPULSE_JWT_SECRET (for tests and integrations)."""
    settings = Settings()
    secret = settings.jwt_secret
    if not secret:
        console.print("[red]REELPULSE_JWT_SECRET is not set[/red]")
        raise typer.Exit(2)
    audience = settings.jwt_audience or DEFAULT_AUDIENCE
    print(
        tokens.issue(
            secret, subject=subject, role=role, audience=audience, ttl_seconds=ttl,
            creator_id=creator,
        )
    )  # fmt: skip
