"""The HandField of Django's "How to create custom model fields": its values
are Hand objects, which no serializer knows, and one that says how it round-trips."""

import dataclasses
import re

from django.core.exceptions import ValidationError
from django.db import models


@dataclasses.dataclass
class Hand:
    """A hand of cards (bridge style): four lists of 13 two-letter cards."""

    north: list
    east: list
    south: list
    west: list

    def __str__(self):
        return "".join("".join(cards) for cards in (self.north, self.east, self.south, self.west))


def parse_hand(hand_string):
    """Take a string of cards and split into a full hand."""
    p1 = re.compile(".{26}")
    p2 = re.compile("..")
    args = [p2.findall(x) for x in p1.findall(hand_string)]
    if len(args) != 4:
        raise ValidationError("Invalid input for a Hand instance")
    return Hand(*args)


def deal(offset: int = 0) -> Hand:
    cards = [f"{rank}{suit}" for suit in "SHDC" for rank in "AKQJT98765432"]
    cards = cards[offset:] + cards[:offset]
    return Hand(*(cards[i : i + 13] for i in range(0, 52, 13)))


class HandField(models.Field):
    description = "A hand of cards (bridge style)"

    def __init__(self, *args, **kwargs):
        kwargs["max_length"] = 104
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        del kwargs["max_length"]
        return name, path, args, kwargs

    def from_db_value(self, value, expression, connection):
        if value is None:
            return value
        return parse_hand(value)

    def to_python(self, value):
        if isinstance(value, Hand) or value is None:
            return value
        return parse_hand(value)

    def get_prep_value(self, value):
        return None if value is None else str(value)

    def get_internal_type(self):
        return "CharField"


class CachedHandField(HandField):
    """A HandField that tells cachelayer how its values round-trip."""

    def cache_encode(self, value):
        return str(value)

    def cache_decode(self, value):
        return parse_hand(value)
