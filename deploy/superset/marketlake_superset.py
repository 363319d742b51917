"""Superset's logins checked against the platform's accounts; runs inside Superset's environment.

``superset_config.py`` makes :class:`PlatformSecurityManager` Superset's security
manager, and ``python -m marketlake_superset`` is the setup step of every start.
The service copies this file into Superset's home and puts that directory on
Superset's ``PYTHONPATH``; it imports Superset, Flask-AppBuilder, argon2-cffi and
the standard library, never marketlake (whose environment Superset does not share).

Why it looks like this:

- One name and password per person across the platform: the Dagster UI, the
  order gateways and Superset read the same accounts file (SQLite, 0600, argon2id
  hashes; ``marketlake accounts add|reset|list|remove``). Superset opens it
  read-only and never stores the password: a platform account's Superset user
  gets an unusable random one, so only this check can log it in.
- Roles follow the platform's: an ``operator`` is Superset's ``Admin``; a
  ``viewer`` gets the ``Viewer`` role below (reads every dashboard and chart,
  may set filters and share links, changes nothing); a ``trader`` is refused,
  because the dashboards show every member's positions and P&L and a member
  sees only its own. Roles are set again at each login, so a changed role or a
  removed account takes effect at the next one; a session lasts
  ``PERMANENT_SESSION_LIFETIME`` (the service sets 8 hours).
- Superset's own generated admin (``MARKETLAKE_LOCAL_ADMIN``) stays a local user
  checked by Superset itself: provisioning and a recovery login need no platform
  account, and no platform account can take its name. Other names that are not
  platform accounts fall through to Superset's check too (users an admin made
  in Superset's UI).
- A failed login costs one argon2 verification whether or not the name exists,
  so timing does not tell which names do.
"""

from __future__ import annotations

import logging
import os
import secrets
import sqlite3
import sys
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from superset.security import SupersetSecurityManager

log = logging.getLogger(__name__)

VIEWER_ROLE = "Viewer"
ROLE_FOR = {"operator": "Admin", "viewer": VIEWER_ROLE}  # a trader has no Superset role
PLATFORM_LAST_NAME = "(marketlake account)"

# What a Viewer may do besides reading (Superset's read-only permissions): open
# dashboards and charts, drill and download what it sees, keep filter state and
# share links. Nothing that writes a chart, dashboard, dataset, tag or theme.
VIEWER_ACTIONS = frozenset({
    "menu_access", "can_dashboard", "can_dashboard_permalink", "can_explore",
    "can_explore_json", "can_slice", "can_fetch_datasource_metadata", "can_log",
    "can_language_pack", "can_share_chart", "can_share_dashboard", "can_csv", "can_drill",
    "can_view_chart_as_table", "can_view_query", "can_recent_activity", "can_query",
    "can_query_form_data", "can_time_range", "can_userinfo",
})  # fmt: skip
VIEWER_STATE_STORES = frozenset({
    "DashboardFilterStateRestApi", "DashboardPermalinkRestApi", "ExploreFormDataRestApi",
    "ExplorePermalinkRestApi",
})  # fmt: skip
NOT_FOR_VIEWERS = frozenset({"UserRegistrationsRestAPI", "ResetMyPasswordView"})

_hasher = PasswordHasher()
_dummy_hash = _hasher.hash(secrets.token_urlsafe(24))


def platform_account(accounts: Path, name: str) -> tuple[str, str] | None:
    """``(role, argon2 hash)`` of the platform account ``name``, or None (read-only)."""
    if not accounts.is_file():
        return None
    uri = f"file:{accounts}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True, timeout=10.0)) as conn:
        try:
            row = conn.execute(
                "SELECT role, password_hash FROM accounts WHERE name = ?", (name,)
            ).fetchone()
        except sqlite3.OperationalError:  # a file without the table: no accounts yet
            return None
    return (str(row[0]), str(row[1])) if row else None


def password_matches(hashed: str, password: str) -> bool:
    try:
        return bool(_hasher.verify(hashed, password))
    except (VerificationError, InvalidHashError):
        return False


def is_viewer_pvm(pvm: Any, gamma: Callable[[Any], bool]) -> bool:
    """Whether a Viewer holds ``pvm``: Gamma's reading part, and every dataset's data."""
    permission, view = pvm.permission.name, pvm.view_menu.name
    if (permission, view) == ("all_datasource_access", "all_datasource_access"):
        return True
    if not gamma(pvm) or view in NOT_FOR_VIEWERS:
        return False
    return (
        permission in SupersetSecurityManager.READ_ONLY_PERMISSION
        or permission in VIEWER_ACTIONS
        or (permission == "can_write" and view in VIEWER_STATE_STORES)
    )


class PlatformSecurityManager(SupersetSecurityManager):
    """Superset's security manager with logins checked against the platform's accounts."""

    def auth_user_db(self, username: str | None, password: str | None) -> Any:
        config = current_app.config
        if not username or not password or username == config.get("MARKETLAKE_LOCAL_ADMIN"):
            return super().auth_user_db(username, password)
        found = platform_account(Path(config.get("MARKETLAKE_ACCOUNTS_FILE") or ""), username)
        if found is None:
            password_matches(_dummy_hash, password)  # as long as a platform account's check
            return super().auth_user_db(username, password)
        role, hashed = found
        if not password_matches(hashed, password):
            log.info("login refused: wrong password for platform account %r", username)
            user = self.find_user(username=username)
            if user is not None:
                self.update_user_auth_stat(user, False)
            return None
        superset_role = ROLE_FOR.get(role)
        if superset_role is None:
            log.info(
                "login refused: %r is a platform %s; Superset is for operators and viewers",
                username, role,
            )  # fmt: skip
            return None
        return self._platform_user(username, superset_role)

    def _platform_user(self, username: str, role_name: str) -> Any:
        """The Superset user of a platform account, made or updated to its platform role."""
        role = self.find_role(role_name)
        if role is None:
            log.error("login refused: Superset has no %r role (setup did not run)", role_name)
            return None
        user = self.find_user(username=username)
        if user is None:
            user = self.add_user(
                username, username, PLATFORM_LAST_NAME, f"{username}@accounts.marketlake.local",
                [role], password=secrets.token_urlsafe(32),
            )  # fmt: skip
            if not user:
                log.error("could not create the Superset user of platform account %r", username)
                return None
            log.info("platform account %r logged in for the first time as %s", username, role_name)
        elif [r.name for r in user.roles] != [role_name] or not user.active:
            user.roles = [role]
            user.active = True
            log.info("platform account %r now has Superset's %s role", username, role_name)
        self.update_user_auth_stat(user, True)  # commits the session
        return user

    def sync_viewer_role(self) -> None:
        """The Viewer role holds exactly :func:`is_viewer_pvm`'s permissions."""
        self.set_role(
            VIEWER_ROLE, lambda pvm: is_viewer_pvm(pvm, self._is_gamma_pvm), self._get_all_pvms()
        )


def ensure_setup(admin: str, email: str, password: str) -> list[str]:
    """The local admin with the stored password, and the Viewer role; what it changed."""
    from superset.app import create_app
    from werkzeug.security import check_password_hash

    said = []
    app = create_app()
    with app.app_context():
        from superset.extensions import db

        sm = app.appbuilder.sm
        user = sm.find_user(username=admin)
        if user is None:
            role = sm.find_role(sm.auth_role_admin)
            if role is None or not sm.add_user(admin, "Superset", "Admin", email, role, password):
                raise SystemExit(f"could not create the admin user {admin!r}")
            said.append(f"created the admin user {admin!r}")
        elif not check_password_hash(user.password or "", password):
            sm.reset_password(user.id, password)
            said.append(f"set the password of {admin!r} back to the stored one")
        sm.sync_viewer_role()
        db.session.commit()
        viewer = sm.find_role(VIEWER_ROLE)
        said.append(f"the {VIEWER_ROLE} role holds {len(viewer.permissions)} permissions")
    return said


if __name__ == "__main__":
    # argv: admin name, admin email; the password only in the environment (never argv)
    secret = os.environ.pop("MARKETLAKE_SUPERSET_ADMIN_PASSWORD")
    for line in ensure_setup(sys.argv[1], sys.argv[2], secret):
        print(line)
