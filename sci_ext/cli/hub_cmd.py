"""``jupyter sci hub scrape-config``: one Prometheus for a JupyterHub team.

Reads the hub's user list (``GET /hub/api/users`` with a token holding ``list:users``)
and prints a Prometheus ``scrape_configs`` document: one job per user who has a key
file in ``--keys-dir`` (``/user/NAME/sci/metrics`` through the hub's proxy, with that
user's own ``metrics:read`` API key read by Prometheus from the file, never copied into
the config), plus a ``jupyterhub`` job for ``/hub/metrics`` when a token with
``read:metrics`` is given.  Every series gets a ``user`` label, which the Grafana
dashboard's ``user`` variable selects.

API keys are per user and per server (each lives in its user's private state), so the
command cannot mint them: each user runs ``jupyter sci apikey create prometheus --scope
metrics:read`` and hands the key to whoever runs Prometheus, who stores it as
``KEYS_DIR/NAME`` (mode 0600, readable by Prometheus only).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "scrape_config"]

TOKEN_VARS = ("SCI_EXT_HUB_TOKEN", "JUPYTERHUB_API_TOKEN")


def add_parser(subparsers: Any) -> None:
    """Add the ``hub`` command group."""
    hub = subparsers.add_parser(
        "hub",
        help="JupyterHub helpers (a Prometheus scrape config for every user)",
        description="Helpers for running sci_ext on a JupyterHub.",
    )
    verbs = hub.add_subparsers(dest="hub_command", metavar="VERB")
    verbs.required = True
    scrape = verbs.add_parser(
        "scrape-config",
        help="print a Prometheus scrape config for every hub user's /sci/metrics",
        description="Print Prometheus scrape_configs for every hub user who has an API-key file in --keys-dir, "
        "and for the hub's own /hub/metrics. Exit 0 on success, 1 when the hub cannot be read, 2 on bad usage.",
    )
    scrape.add_argument("--hub-url", required=True, metavar="URL", help="the hub's public URL (with its base URL)")
    scrape.add_argument(
        "--keys-dir",
        required=True,
        metavar="DIR",
        help="directory Prometheus reads, holding one file per user (named as the user) with their metrics:read key",
    )
    scrape.add_argument(
        "--token-file",
        metavar="FILE",
        help="file holding a hub API token with list:users (default: $SCI_EXT_HUB_TOKEN, $JUPYTERHUB_API_TOKEN)",
    )
    scrape.add_argument(
        "--hub-metrics-token-file",
        metavar="FILE",
        help="file holding a hub token with read:metrics: adds a 'jupyterhub' job for /hub/metrics",
    )
    scrape.add_argument("--interval", default="30s", metavar="DURATION", help="scrape interval (default 30s)")
    scrape.add_argument("-o", "--output", metavar="FILE", help="write the config here instead of standard output")
    scrape.set_defaults(handler=_scrape_config)


def _job_name(user: str) -> str:
    return "sci_ext_" + re.sub(r"[^A-Za-z0-9_]", "_", user)


def scrape_config(
    hub_url: str,
    users: list[str],
    keys_dir: Path,
    interval: str = "30s",
    hub_metrics_token_file: Path | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """``(config, skipped users)``: the scrape config for ``users`` that have a key file in ``keys_dir``."""
    parts = urllib.parse.urlsplit(hub_url.rstrip("/"))
    base = parts.path
    jobs: list[dict[str, Any]] = []
    skipped: list[str] = []
    for user in sorted(users):
        key_file = keys_dir / user
        if not key_file.is_file():
            skipped.append(user)
            continue
        jobs.append(
            {
                "job_name": _job_name(user),
                "scheme": parts.scheme,
                "metrics_path": f"{base}/user/{urllib.parse.quote(user, safe='')}/sci/metrics",
                "authorization": {"type": "Bearer", "credentials_file": str(key_file.resolve())},
                "static_configs": [{"targets": [parts.netloc], "labels": {"user": user}}],
            }
        )
    if hub_metrics_token_file is not None:
        jobs.append(
            {
                "job_name": "jupyterhub",
                "scheme": parts.scheme,
                "metrics_path": f"{base}/hub/metrics",
                "authorization": {"type": "Bearer", "credentials_file": str(hub_metrics_token_file.resolve())},
                "static_configs": [{"targets": [parts.netloc]}],
            }
        )
    config = {"global": {"scrape_interval": interval}, "scrape_configs": jobs}
    return config, skipped


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """The token is for the hub the user named: a redirect elsewhere is refused, not followed."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _hub_users(hub_url: str, token: str, timeout: float = 30.0) -> list[str]:
    url = hub_url.rstrip("/") + "/hub/api/users"
    request = urllib.request.Request(  # noqa: S310 - scheme checked by the caller
        url, headers={"Authorization": f"token {token}", "Accept": "application/json"}
    )
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise OSError(f"{url} answered {exc.code} (the token needs the list:users scope)") from None
    if isinstance(body, dict):  # the paginated form
        body = body.get("items", [])
    return [str(user["name"]) for user in body]


def _read_token(path: str | None) -> str | None:
    if path:
        return Path(path).read_text().strip()
    return next((os.environ[v] for v in TOKEN_VARS if os.environ.get(v)), None)


def _scrape_config(args: argparse.Namespace) -> int:
    import yaml

    from . import UsageFailure

    if urllib.parse.urlsplit(args.hub_url).scheme not in ("http", "https"):
        raise UsageFailure(f"--hub-url must be an http(s) URL, got {args.hub_url!r}")
    keys_dir = Path(args.keys_dir)
    if not keys_dir.is_dir():
        raise UsageFailure(f"--keys-dir {keys_dir}: not a directory")
    token = _read_token(args.token_file)
    if not token:
        raise UsageFailure("a hub token is needed: --token-file FILE, $SCI_EXT_HUB_TOKEN or $JUPYTERHUB_API_TOKEN")
    users = _hub_users(args.hub_url, token)
    metrics_token = Path(args.hub_metrics_token_file) if args.hub_metrics_token_file else None
    config, skipped = scrape_config(args.hub_url, users, keys_dir, args.interval, metrics_token)
    text = yaml.safe_dump(config, sort_keys=False)
    if skipped:
        text = f"# no key file in {keys_dir} for: {', '.join(skipped)} (not scraped)\n" + text
        print(f"jupyter sci hub: no key file for {', '.join(skipped)}: not scraped", file=sys.stderr)
    if args.output:
        from ..core import trust

        # The config names key files but holds no secret: readable by the Prometheus user.
        trust.atomic_write(args.output, text, mode=0o644)
    else:
        sys.stdout.write(text)
    return 0
