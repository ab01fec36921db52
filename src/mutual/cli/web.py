"""``mutual serve``, ``mutual users …`` and ``mutual tokens …``: the web server and who may use it.

Users and tokens live in the control plane only, so they can be managed while ``mutual serve`` runs (it holds the
data plane); only adding a regional analyst or trust submitter reads the organisations, from the data plane.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mutual.app import open_mutual
from mutual.cli.main import Home, app, err, friendly, out
from mutual.web import accounts
from mutual.web.accounts import Role

users_app = typer.Typer(help="Users of the web and the API: add, list, disable.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens for systems: create, list, revoke.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")

ROLES = ", ".join(r.value for r in Role)
PasswordStdin = Annotated[bool, typer.Option("--password-stdin", help="Read the password from the first line of "
                                                                      "standard input (for scripts)")]


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value else ""


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    accounts.check_password_rules(password)
    return password


@app.command()
@friendly
def serve(host: Annotated[str, typer.Option(help="Address to listen on (127.0.0.1: this machine only)")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="Port to listen on", min=1, max=65535)] = 8000,
          max_upload_mb: Annotated[float, typer.Option(help="Largest request body accepted, in MiB", min=0.001)] = 50,
          secure_cookies: Annotated[bool, typer.Option("--secure-cookies", help="Mark session cookies Secure even "
                                                                                "when requests arrive over http "
                                                                                "(behind a TLS proxy)")] = False,
          log_level: Annotated[str, typer.Option(help="critical, error, warning, info or debug")] = "info",
          home: Home = None) -> None:
    """Serve the dashboard, the REST API (/api/v1) and the FHIR endpoint (/fhir) over the workspace."""
    if log_level not in ("critical", "error", "warning", "info", "debug"):
        raise typer.BadParameter("use critical, error, warning, info or debug", param_hint="--log-level")
    run_server(home, host, port, max_upload_mb=max_upload_mb, secure_cookies=secure_cookies, log_level=log_level)


def run_server(home: Path | None, host: str, port: int, *, max_upload_mb: float = 50, secure_cookies: bool = False,
               log_level: str = "info") -> None:
    """Serve the workspace at ``home`` until interrupted (``mutual serve``, and ``mutual demo`` at its end)."""
    import uvicorn

    from mutual.web.app import create_app
    from mutual.web.deps import MiB, WebSettings

    settings = WebSettings(max_body_bytes=int(max_upload_mb * MiB), secure_cookies=True if secure_cookies else None)
    web = create_app(home, settings=settings)
    where = f"[{host}]" if ":" in host else host
    err.print(f"serving {web.state.web.mutual.workspace.home} at http://{where}:{port}/ (Ctrl-C to stop)",
              highlight=False, soft_wrap=True)
    uvicorn.run(web, host=host, port=port, log_level=log_level, server_header=False)


# -- users -------------------------------------------------------------------------------------------------------


@users_app.command("add")
@friendly
def users_add(name: Annotated[str, typer.Argument(help="User name (letters, digits, . _ @ -)")],
              role: Annotated[str, typer.Option(help=ROLES)],
              region: Annotated[str | None, typer.Option(help="Region code (regional analysts)")] = None,
              org: Annotated[str | None, typer.Option(
                  help="Trust code (trust submitters); partner code (partners)")] = None,
              password_stdin: PasswordStdin = False,
              no_password: Annotated[bool, typer.Option("--no-password", help="A system account: API tokens only, "
                                                                              "no sign-in")] = False,
              home: Home = None) -> None:
    """Add a user with a role (and the region or trust it is limited to); asks for the password."""
    the_role = accounts.parse_role(role)
    accounts.normalise_username(name)
    password = None if no_password else _read_password(password_stdin)
    if the_role in (Role.REGIONAL_ANALYST, Role.TRUST_SUBMITTER) or region or org:
        with open_mutual(home, read_only=True) as m:
            user = accounts.add_user(m.sessions, name, the_role, password=password, region=region, org=org,
                                     orgs=m.orgs())
    else:
        with accounts.control_plane(home) as sessions:
            user = accounts.add_user(sessions, name, the_role, password=password)
    scope = f" for {user.region or user.org}" if user.region or user.org else ""
    out.print(f"added {user.username}: {user.role}{scope}" + (" (API tokens only)" if no_password else ""),
              highlight=False)


@users_app.command("list")
@friendly
def users_list(home: Home = None) -> None:
    """List users with their role, scope and last sign-in."""
    with accounts.control_plane(home) as sessions:
        users = accounts.list_users(sessions)
    table = Table("user", "role", "region / trust", "status", "signs in with", "created", "last sign-in")
    for u in users:
        table.add_row(u.username, u.role, u.region or u.org or "", "disabled" if u.disabled else "active",
                      "password" if u.password_hash else "tokens only", _when(u.created_at), _when(u.last_login_at))
    out.print(table)


@users_app.command("disable")
@friendly
def users_disable(name: Annotated[str, typer.Argument(help="User name")], home: Home = None) -> None:
    """Disable a user: their sessions end and their API tokens stop working."""
    with accounts.control_plane(home) as sessions:
        user = accounts.set_disabled(sessions, name, True)
    out.print(f"disabled {user.username}", highlight=False)


@users_app.command("enable")
@friendly
def users_enable(name: Annotated[str, typer.Argument(help="User name")], home: Home = None) -> None:
    """Enable a disabled user again."""
    with accounts.control_plane(home) as sessions:
        user = accounts.set_disabled(sessions, name, False)
    out.print(f"enabled {user.username}", highlight=False)


@users_app.command("password")
@friendly
def users_password(name: Annotated[str, typer.Argument(help="User name")], password_stdin: PasswordStdin = False,
                   home: Home = None) -> None:
    """Set a new password; the user's sessions end."""
    with accounts.control_plane(home) as sessions:
        accounts.get_user(sessions, name)
        user = accounts.set_password(sessions, name, _read_password(password_stdin))
    out.print(f"new password set for {user.username}", highlight=False)


# -- tokens ------------------------------------------------------------------------------------------------------


@tokens_app.command("create")
@friendly
def tokens_create(user: Annotated[str, typer.Option("--user", help="The user the token acts as")],
                  name: Annotated[str | None, typer.Option("--name", help="A label: which system uses it")] = None,
                  expires: Annotated[float | None, typer.Option("--expires", help="Days until it expires "
                                                                                 "(default: never)")] = None,
                  agreement: Annotated[str | None, typer.Option(
                      "--agreement", help="For a partner's system: the one agreement the token serves")] = None,
                  home: Home = None) -> None:
    """Create an API token and print it (on stdout, once: only its hash is kept)."""
    with accounts.control_plane(home) as sessions:
        info, secret = accounts.create_token(sessions, user, name=name, expires_days=expires, agreement=agreement)
    sys.stdout.write(secret + "\n")
    sys.stdout.flush()
    until = f", expires {_when(info.expires_at)} UTC" if info.expires_at else ""
    err.print(f"token {info.id} ({info.name}) for {info.username}{until}: keep it now, it cannot be shown again; "
              f"send it as `Authorization: Bearer <token>`", highlight=False)


@tokens_app.command("revoke")
@friendly
def tokens_revoke(token_id: Annotated[int, typer.Argument(help="Token id (see `mutual tokens list`)")],
                  home: Home = None) -> None:
    """Revoke an API token at once."""
    with accounts.control_plane(home) as sessions:
        info = accounts.revoke_token(sessions, token_id)
    out.print(f"revoked token {info.id} ({info.name}) of {info.username}", highlight=False)


@tokens_app.command("list")
@friendly
def tokens_list(user: Annotated[str | None, typer.Option("--user", help="Only this user's tokens")] = None,
                home: Home = None) -> None:
    """List API tokens (never the tokens themselves) and whether each still works."""
    with accounts.control_plane(home) as sessions:
        tokens = accounts.list_tokens(sessions, user)
    now = accounts.utcnow()
    table = Table("id", "user", "name", "starts with", "created", "expires", "last used", "state")
    for t in tokens:
        table.add_row(str(t.id), t.username, t.name, t.prefix + "…", _when(t.created_at), _when(t.expires_at),
                      _when(t.last_used_at), t.state(now))
    out.print(table)
