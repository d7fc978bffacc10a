"""Cached protection rules never outlive a change made in this process."""

from __future__ import annotations

from django.core.management import call_command


def test_loaded_rules_apply_to_the_next_request(owner, make_image, tmp_path):
    image = make_image(properties={"secret": "s", "open": "o"})
    assert owner.client().get(f"/v2/images/{image.id}").json()["secret"] == "s"  # rules cached
    rules = tmp_path / "protections.conf"
    rules.write_text(
        "[^secret$]\ncreate = admin\nread = admin\nupdate = admin\ndelete = admin\n\n"
        "[.*]\ncreate = @\nread = @\nupdate = @\ndelete = @\n"
    )

    call_command("load_property_protections", str(rules), "--format", "roles", verbosity=0)
    shown = owner.client().get(f"/v2/images/{image.id}").json()

    assert "secret" not in shown and shown["open"] == "o"


def test_cleared_rules_apply_to_the_next_request(owner, make_image, tmp_path):
    rules = tmp_path / "protections.conf"
    rules.write_text("[^secret$]\ncreate = admin\nread = admin\nupdate = admin\ndelete = admin\n")
    call_command("load_property_protections", str(rules), "--format", "roles", verbosity=0)
    image = make_image(properties={"secret": "s"})
    assert "secret" not in owner.client().get(f"/v2/images/{image.id}").json()

    call_command("load_property_protections", "--clear", verbosity=0)

    assert owner.client().get(f"/v2/images/{image.id}").json()["secret"] == "s"
