"""The Glance v2 image routes (literal Glance paths, no trailing slashes)."""

from __future__ import annotations

from django.urls import path

from images.views import data, discovery, images, imports, members, schemas

urlpatterns = [
    path("images", images.ImagesView.as_view()),
    path("images/<str:image_id>", images.ImageView.as_view()),
    path("images/<str:image_id>/file", data.ImageFileView.as_view()),
    path("images/<str:image_id>/stage", imports.StageView.as_view()),
    path("images/<str:image_id>/import", imports.ImportView.as_view()),
    path("info/import", imports.ImportInfoView.as_view()),
    path("images/<str:image_id>/actions/deactivate", images.DeactivateView.as_view()),
    path("images/<str:image_id>/actions/reactivate", images.ReactivateView.as_view()),
    path("images/<str:image_id>/tags/<str:tag>", images.ImageTagView.as_view()),
    path("images/<str:image_id>/members", members.MembersView.as_view()),
    path("images/<str:image_id>/members/<str:member_id>", members.MemberView.as_view()),
    path("info/stores", discovery.StoresInfoView.as_view()),
    path("info/stores/detail", discovery.StoresDetailView.as_view()),
    path("info/usage", discovery.UsageInfoView.as_view()),
    path("stores/<str:store_id>/<str:image_id>", data.StoreDataView.as_view()),
    *[
        path(f"schemas/{name}", schemas.SchemaView.as_view(schema_name=name))
        for name in schemas.DOCUMENTS
    ],
]
