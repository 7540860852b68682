"""The container form: installed models and their fields as choices, not free text.

The model is one of the installed models; each column is one of its fields,
offered grouped by model (a small script shows only the chosen model's
group). Validation stays in Container.clean(), which shares its validators
with the system checks, so a bad mapping is a form error, never a 500.
"""

from __future__ import annotations

from django import forms
from django.apps import apps
from django.contrib.contenttypes.models import ContentType

from cachelayer.core.mapping import split_columns
from cachelayer.models import Container

JOIN = "|"  # how the form writes several column names


def installed_models():
    """Return the content types of installed models (stale ones have no model)."""
    return ContentType.objects.filter(
        pk__in=[ct.pk for ct in ContentType.objects.all() if ct.model_class() is not None]
    ).order_by("app_label", "model")


def field_choices(blank: bool) -> list:
    """Return every installed model's concrete fields, grouped under the model's label."""
    groups = [
        (
            model._meta.label,
            [(f.name, f"{f.name} ({f.get_internal_type()})") for f in model._meta.concrete_fields],
        )
        for model in sorted(apps.get_models(), key=lambda m: m._meta.label)
    ]
    return [("", "---------"), *groups] if blank else groups


class ModelLabelChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return obj.model_class()._meta.label  # the same text as the field groups' labels


class ContainerForm(forms.ModelForm):
    content_type = ModelLabelChoiceField(queryset=ContentType.objects.none(), label="Model")
    key_columns = forms.MultipleChoiceField(
        help_text="The primary key or fields covered by a unique constraint: a key maps to one row. Other fields "
        "make an index container: a key maps to the list of rows that hold it (several: joined by the separator)."
    )
    value_columns = forms.MultipleChoiceField(required=False, help_text="Fields a key/value read returns; none = all.")
    flags_column = forms.ChoiceField(required=False, help_text="An integer field for memcached flags.")
    cas_column = forms.ChoiceField(required=False, help_text="A 64-bit integer field for cas tokens.")
    expire_time_column = forms.ChoiceField(required=False, help_text="An integer field holding a unix expiry time.")

    COLUMN_LISTS = ("key_columns", "value_columns")
    MAPPING = ("content_type", *COLUMN_LISTS)
    SINGLE_COLUMNS = ("flags_column", "cas_column", "expire_time_column")

    class Meta:
        model = Container
        fields = "__all__"  # noqa: DJ007 (the admin form edits every column of a container)

    class Media:
        js = ("cachelayer/container_form.js",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["content_type"].queryset = installed_models()  # type: ignore[attr-defined]  # a ModelChoiceField; django-stubs: Field
        for name in self.COLUMN_LISTS:
            self.fields[name].choices = field_choices(blank=False)  # type: ignore[attr-defined]  # a ChoiceField; django-stubs: Field
            self.initial[name] = split_columns(getattr(self.instance, name))
        for name in self.SINGLE_COLUMNS:
            self.fields[name].choices = field_choices(blank=True)  # type: ignore[attr-defined]  # a ChoiceField; django-stubs: Field

    def _joined(self, name: str) -> str:
        """Join chosen columns, keeping the stored order when the choice did not change."""
        chosen = list(dict.fromkeys(self.cleaned_data[name]))  # one field name may be offered per model
        stored = split_columns(getattr(self.instance, name))
        return JOIN.join(stored if set(stored) == set(chosen) else chosen)

    def save(self, commit=True):
        """An edit of the mapping in the admin wins over the model's declaration from now on."""
        if self.instance.declared and set(self.changed_data) & set(self.MAPPING):
            self.instance.declared = False
        return super().save(commit)

    def clean_key_columns(self):
        return self._joined("key_columns")

    def clean_value_columns(self):
        return self._joined("value_columns")
