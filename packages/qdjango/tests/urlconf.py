from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import path

from qdjango.metrics import metrics_view


def boom(request: HttpRequest) -> HttpResponse:
    """A view that fails with Q's Redis URL in a local variable (the DEBUG error page test)."""
    from django.conf import settings

    url = settings.Q_CLUSTER["redis"]
    raise RuntimeError(f"the view failed, with a URL in a variable ({len(url)} characters)")


urlpatterns = [
    path("admin/", admin.site.urls),
    path("boom/", boom),
    path("q/metrics", metrics_view),
]
