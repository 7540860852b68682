"""The edit form of the country page."""

from django import forms

from demo_project.demo.models import Country


class CountryForm(forms.ModelForm):
    class Meta:
        model = Country
        fields = ["population", "area_sq_km", "drive_side"]
