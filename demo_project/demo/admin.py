from django.contrib import admin

from demo_project.demo.models import Country, DemoTest


@admin.register(DemoTest)
class DemoTestAdmin(admin.ModelAdmin):
    list_display = ("c1", "c2", "c3", "c4", "c5")


@admin.register(Country)
class CountryAdmin(admin.ModelAdmin):
    list_display = ("country", "population", "area_sq_km", "drive_side")
    search_fields = ("country",)
