"""Pages of the demo site."""

from django.http import Http404
from django.shortcuts import render

from demo_project.demo.models import Country


def country_list(request):
    countries = Country.objects.order_by("country").values_list("country", flat=True)
    return render(request, "demo/country_list.html", {"countries": countries})


def country_detail(request, name):
    try:
        country = Country.cached.get(name)
    except Country.DoesNotExist:
        raise Http404(f"No country named {name!r}")
    return render(request, "demo/country_detail.html", {"country": country})
