"""The audit trail: one row per event of the stream (``imageservice.events``)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class AuditEvent(models.Model):
    at = models.DateTimeField(default=timezone.now, db_index=True)
    action = models.CharField(max_length=64, db_index=True)
    outcome = models.CharField(max_length=16, default="success")
    image_id = models.CharField(max_length=36, blank=True, default="", db_index=True)
    task_id = models.CharField(max_length=36, blank=True, default="", db_index=True)
    member_id = models.CharField(max_length=255, blank=True, default="")
    user_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    project_id = models.CharField(max_length=255, blank=True, default="", db_index=True)
    roles = models.CharField(max_length=1024, blank=True, default="")
    command = models.CharField(max_length=64, blank=True, default="")
    request_id = models.CharField(max_length=70, blank=True, default="", db_index=True)
    node = models.CharField(max_length=255, blank=True, default="")
    # Field or property → [old, new], for metadata edits.
    changes = models.JSONField(default=dict, blank=True)
    detail = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["image_id", "at"]), models.Index(fields=["-at", "-id"])]

    def __str__(self) -> str:
        return f"{self.action} {self.image_id or self.task_id} ({self.outcome})"

    @property
    def who(self) -> str:
        if self.command:
            return f"command {self.command}" + (f" for {self.user_id}" if self.user_id else "")
        return self.user_id or "(anonymous)"
