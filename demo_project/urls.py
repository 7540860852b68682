"""URLs of the demo site: the country pages, an async JSON view, the admin, the toolbar."""

from django.apps import apps
from django.contrib import admin
from django.urls import include, path

from demo_project.demo import views

urlpatterns = [
    path("", views.country_list, name="country-list"),
    path("countries/<str:name>/", views.country_detail, name="country-detail"),
    path("api/countries/<str:name>/", views.country_json, name="country-json"),
    path("admin/", admin.site.urls),
]

# Not debug_toolbar_urls(): that reads DEBUG when this module is imported, and the
# browser test turns DEBUG on only after the test runner turned it off.
if apps.is_installed("debug_toolbar"):
    urlpatterns.append(path("__debug__/", include("debug_toolbar.urls")))
