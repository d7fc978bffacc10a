"""System check: the policy (defaults plus ``POLICY_FILE``) must compile."""

from __future__ import annotations

from django.core.checks import CheckMessage, Error

from imageservice.policy.engine import Policy, PolicyError


def check_policy(app_configs: object, **kwargs: object) -> list[CheckMessage]:
    # A fresh build rather than get_policy(): the check must read the settings as they are now,
    # and must not leave a half-trusted policy cached for requests.
    try:
        Policy()
    except PolicyError as error:
        return [
            Error(
                str(error),
                hint=(
                    "Fix the rule or the file named by POLICY_FILE (YAML mapping rule names to "
                    "check strings), or unset POLICY_FILE to use Glance's defaults."
                ),
                id="imageservice.E010",
            )
        ]
    return []
