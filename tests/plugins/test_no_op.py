"""no_op changes nothing at all."""

from __future__ import annotations

import dataclasses

from importplugins.no_op import NoOp


def test_no_op_leaves_context_and_data_unchanged(make_context):
    context = make_context(b"image bytes", properties={"a": "1"})
    before = dataclasses.asdict(context)

    NoOp().run(context)

    assert dataclasses.asdict(context) == before
    assert context.data_path.read_bytes() == b"image bytes"
