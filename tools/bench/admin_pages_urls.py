"""The URLs of tools/bench/admin_pages.py's site: the admin only."""

from django.contrib import admin
from django.urls import path

urlpatterns = [path("admin/", admin.site.urls)]
