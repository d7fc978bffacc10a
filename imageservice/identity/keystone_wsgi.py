"""Keystone mode's WSGI layer: keystonemiddleware's ``auth_token`` in front of Django.

As in Glance's paste pipeline, the version documents (``/``, ``/versions`` and every other
unversioned path answering 300) need no token; neither do the operator console (sessions) and
its static files. Every ``/v2`` request goes through ``AuthProtocol``, which validates the token
against Keystone, strips identity headers the client sent itself and sets its own
(``X-Identity-Status``, ``X-User-Id``, ``X-Roles``, ``X-Service-*``…); those become the
credentials in :class:`imageservice.identity.authentication.KeystoneAuthentication`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from django.conf import settings
from keystoneauth1 import loading
from keystoneauth1.exceptions import NoMatchingPlugin
from keystonemiddleware import auth_token
from oslo_config import cfg

from imageservice.identity.credentials import VALIDATED_ENVIRON_KEY
from imageservice.middleware import MINOR_VERSION_PATH
from imageservice.versions import advertised_versions

AUTHTOKEN_GROUP = "keystone_authtoken"
# Without these the middleware cannot validate a token, or cannot tell clients where to get one.
REQUIRED_OPTIONS = ("www_authenticate_uri", "auth_url", "auth_type")

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]


def needs_token(path: str) -> bool:
    """Whether a request for ``path`` goes through keystonemiddleware (the v2 API and its
    advertised ``/v2.N`` aliases) or not (version documents, console, static files)."""
    if path == "/v2" or path.startswith("/v2/"):
        return True
    match = MINOR_VERSION_PATH.match(path)
    return bool(match and match.group(1) in advertised_versions())


def authtoken_config(options: Mapping[str, str]) -> cfg.ConfigOpts:
    """A private oslo.config object holding ``[keystone_authtoken]`` as ``options`` give it.

    Private, so nothing of ours touches the process-wide ``cfg.CONF``; the auth plugin's own
    options (``username``, ``password``, ``project_name``…) are registered before the values
    are set, so they are typed and checked like keystonemiddleware's.
    """
    # Nothing here reads X-Service-Catalog: unless asked for, the middleware need not serialise
    # the catalog into every request.
    options = {"include_service_catalog": "false", **options}
    conf = cfg.ConfigOpts()
    conf(args=[], default_config_files=[])
    for group, opts in auth_token.list_opts():
        conf.register_opts(opts, group=group)
    plugin = options.get("auth_type")
    if plugin:
        plugin_opts = loading.get_auth_plugin_conf_options(loading.get_plugin_loader(plugin))
        conf.register_opts(plugin_opts, group=AUTHTOKEN_GROUP)
    for name, value in options.items():
        conf.set_override(name, value, group=AUTHTOKEN_GROUP)
    return conf


def authtoken_problems(options: Mapping[str, str]) -> list[str]:
    """What keeps ``options`` from configuring keystonemiddleware, for the start-up check."""
    problems = [f"{name} is not set" for name in REQUIRED_OPTIONS if not options.get(name)]
    try:
        authtoken_config(options)
    except (cfg.Error, NoMatchingPlugin, ValueError) as error:
        problems.append(str(error))
    return problems


class KeystoneAuthWrapper:
    """The Django application behind ``auth_token.AuthProtocol`` for the paths that need a
    token, and straight to Django for the rest."""

    def __init__(self, app: WSGIApp, options: Mapping[str, str]) -> None:
        self.app = app
        self.protected = auth_token.AuthProtocol(
            self._mark_validated, {"oslo_config_config": authtoken_config(options)}
        )

    def _mark_validated(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        environ[VALIDATED_ENVIRON_KEY] = True
        return self.app(environ, start_response)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if needs_token(environ.get("PATH_INFO", "")):
            return self.protected(environ, start_response)
        return self.app(environ, start_response)


def wrap(app: WSGIApp) -> WSGIApp:
    """``app`` behind keystonemiddleware, configured from the settings."""
    return KeystoneAuthWrapper(app, settings.KEYSTONE_AUTHTOKEN)
