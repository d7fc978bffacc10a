"""``clouds.yaml`` entries that log in through the embedded Keystone with a password."""

from __future__ import annotations

import yaml
from django.conf import settings

from imageservice.identity.models import User


def auth_url_for(endpoint: str) -> str:
    return f"{endpoint.rstrip('/')}/identity/v3"


def password_cloud(endpoint: str, user: User, password: str) -> dict[str, object]:
    """One cloud: ``user`` with ``password`` in their project, the public interface."""
    auth = {
        "auth_url": auth_url_for(endpoint),
        "username": user.username,
        "password": password,
        "user_domain_name": "Default",
    }
    if user.project is not None:
        auth |= {"project_name": user.project.name, "project_domain_name": "Default"}
    return {
        "auth_type": "password",
        "auth": auth,
        "region_name": settings.REGION_NAME,
        "interface": "public",
        "identity_api_version": 3,
    }


def clouds_yaml(clouds: dict[str, dict[str, object]]) -> str:
    return yaml.safe_dump({"clouds": clouds}, sort_keys=False, default_flow_style=False)
