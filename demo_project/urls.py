"""URLs of the demo site: the admin and one page per country."""

from django.contrib import admin
from django.urls import path

from demo_project.demo import views

urlpatterns = [
    path("", views.country_list, name="country-list"),
    path("countries/<str:name>/", views.country_detail, name="country-detail"),
    path("admin/", admin.site.urls),
]
