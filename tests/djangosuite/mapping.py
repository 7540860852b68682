"""Containers over every model of the run, so cachelayer's receivers and write
capture run on every write Django's tests make."""

from __future__ import annotations

import hashlib
import sys

from django.apps import apps
from django.db.models import CompositePrimaryKey

from cachelayer.core.mapping import unique_sets, validate_mapping
from cachelayer.engine.invalidation import record_configuration
from cachelayer.engine.registry import container_name
from cachelayer.models import Container
from cachelayer.tasks.autocontainers import content_types


def _name(model, suffix: str = "") -> str:
    """Return a container name that fits Container.name (a digest stands in for the rest)."""
    name, room = container_name(model) + suffix, Container._meta.get_field("name").max_length
    if len(name) <= room:
        return name
    return name[: room - 9] + "_" + hashlib.blake2b(name.encode(), digest_size=4).hexdigest()


def wanted_containers() -> tuple[dict[str, tuple], dict[str, str]]:
    """Return ``{name: (model, key columns)}``: one container per primary key, one per other
    unique key, of every concrete model outside cachelayer whose key cachelayer can map;
    and ``{model.key: why not}`` of the keys it cannot."""
    found, refused = {}, {}
    for model in apps.get_models():
        if model._meta.app_label == "cachelayer" or model._meta.proxy:
            continue
        pk = model._meta.pk
        primary = sorted(f.name for f in pk.fields) if isinstance(pk, CompositePrimaryKey) else [pk.name]
        keys = [primary, *(sorted(names) for names in unique_sets(model))]
        for index, names in enumerate(keys):
            if index and names == keys[0]:
                continue  # the primary key named again
            errors, _ = validate_mapping(model, "|".join(names))
            if not errors:
                found[_name(model, f"__by_{'_'.join(names)}" if index else "")] = (model, "|".join(names))
            else:
                refused[f"{model._meta.label}.{'|'.join(names)}"] = " ".join(m for ms in errors.values() for m in ms)
    return found, refused


def map_every_model(sender, using="default", **kwargs) -> None:
    """After cachelayer's tables exist in a new test database, create the containers."""
    if sender.name != "cachelayer":
        return
    wanted, refused = wanted_containers()
    for key, why in refused.items():  # said, so that a key type cachelayer starts to refuse shows in the log
        print(f"cachelayer: not mapped: {key}: {why}", file=sys.stderr)
    types = content_types({model for model, _ in wanted.values()}, using)
    Container.objects.using(using).bulk_create(
        [Container(name=name, content_type=types[model], key_columns=key) for name, (model, key) in wanted.items()],
        ignore_conflicts=True,
    )
    record_configuration(using, list(wanted))
