"""Tasks routes (under /v2)."""

from __future__ import annotations

from django.urls import path

from tasks import views

urlpatterns = [
    path("tasks", views.TasksView.as_view()),
    path("tasks/<str:task_id>", views.TaskView.as_view()),
    path("images/<str:image_id>/tasks", views.ImageTasksView.as_view()),
]
