"""Property protection rules edited in the operator console take effect on the next request."""

from __future__ import annotations

import pytest
from django.test import Client

from images.models import PropertyProtection

FIELDS = {
    "rule_format": "roles",
    "read_rule": "admin",
    "create_rule": "admin",
    "update_rule": "admin",
    "delete_rule": "admin",
}


@pytest.fixture
def operator(admin):
    admin.user.set_password("pw")
    admin.user.save()
    client = Client()
    client.force_login(admin.user)
    return client


def test_rule_added_in_the_console_hides_the_property_from_a_member(operator, owner, make_image):
    image = make_image(properties={"secret": "s"})

    response = operator.post(
        "/admin/images/propertyprotection/add/", {"position": 1, "pattern": "^secret$", **FIELDS}
    )

    assert response.status_code == 302
    assert PropertyProtection.objects.get().pattern == "^secret$"
    assert "secret" not in owner.client().get(f"/v2/images/{image.id}").json()


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"pattern": "(unclosed"}, "pattern", "Not a valid regular expression"),
        ({"read_rule": "@,admin"}, "read_rule", "@ and ! cannot be combined with roles."),
        (
            {"rule_format": "policies", "read_rule": "no_such_rule"},
            "read_rule",
            "No policy rule named 'no_such_rule'.",
        ),
    ],
)
def test_invalid_rules_are_refused_with_a_reason(operator, change, field, message):
    data = {"position": 1, "pattern": "^x$", **FIELDS, **change}
    if data["rule_format"] == "policies":
        data.update(
            {op: "context_is_admin" for op in ("create_rule", "update_rule", "delete_rule")}
        )

    response = operator.post("/admin/images/propertyprotection/add/", data)

    assert response.status_code == 200
    assert any(message in error for error in response.context["adminform"].form.errors[field])
    assert not PropertyProtection.objects.exists()
