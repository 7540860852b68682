"""Container definitions: one Container row, ready to use.

A definition is the mapping (key, value and special columns, policies,
timeout, cache, database), resolved against the model, with the key codec
(core/codec.py) that turns column values, in any form the database accepts,
into the canonical user key the cache is addressed by (folded by the key
columns' collations: collations.py). The registry (registry.py) builds and keeps them.
"""

from __future__ import annotations

from django.db import router

from cachelayer.adapters.base import Adapter
from cachelayer.adapters.registry import get_adapter
from cachelayer.core import conf, logfields, policies, schema, sensitivity
from cachelayer.core.codec import KeyCodec
from cachelayer.core.keys import KeySpace
from cachelayer.core.mapping import is_unique_key, split_columns
from cachelayer.core.serializers import Conversions, get_serializer
from cachelayer.core.signing import get_signer
from cachelayer.engine import collations
from cachelayer.exceptions import OperationDisabled


class Definition:
    """An immutable, ready-to-use view of one Container row."""

    def __init__(self, row, model, separator: str, delimiter: str):
        self.name = row.name
        self.model = model
        self.database = row.database
        meta = model._meta
        field = meta.get_field
        self.key_fields = [field(name) for name in split_columns(row.key_columns)]
        # Key columns that are not unique: a key maps to the list of rows holding it (engine/indexes.py).
        self.is_index = not is_unique_key(model, [f.name for f in self.key_fields])
        self.flags_field = field(row.flags_column) if row.flags_column else None
        self.cas_field = field(row.cas_column) if row.cas_column else None
        self.expire_field = field(row.expire_time_column) if row.expire_time_column else None
        special = {f for f in (self.flags_field, self.cas_field, self.expire_field) if f}
        named = [field(name) for name in split_columns(row.value_columns)]
        self.whole_row = not named
        self.value_fields = named or [
            f for f in meta.concrete_fields if f not in self.key_fields and f not in special and not f.primary_key
        ]
        wanted = {meta.pk, *self.key_fields, *self.value_fields, *special}
        self.stored_fields = [f for f in meta.concrete_fields if self.whole_row or f in wanted]
        self.stored = [f.attname for f in self.stored_fields]
        self.positions = {attname: i for i, attname in enumerate(self.stored)}
        self.policies = policies.of(row.policy if row.policy_id else None)
        # A near-cache may keep its rows (engine/nearby.py): every write bumps a version
        # (cache_only verbs change payloads in place), and a key maps to one row.
        self.near_eligible = not self.is_index and all(
            self.policies[name] != policies.Policy.CACHE_ONLY for name in ("get_policy", "set_policy", "delete_policy")
        )
        # Refill after write (engine/refills.py): the policy opts in, off by default.
        self.refill = bool(row.policy_id and row.policy.refill_after_write)
        self.timeout = conf.get("TIMEOUT") if row.timeout is None else row.timeout
        self.cache_alias = row.cache_alias or conf.get("CACHE_ALIAS")
        self.enabled, self.exposed = row.enabled, row.exposed
        # What cache_serve may do here at most (core/sensitivity.py), and whether it holds credentials.
        self.protocol_access = sensitivity.protocol_access(model)
        self.sensitive = sensitivity.reason(model) is not None
        self.separator, self.delimiter = separator, delimiter
        self.keys = KeySpace(conf.get("KEY_PREFIX"), row.name)
        folds = collations.folds(self.db_alias, model, self.key_fields)  # by the key columns' collations
        self.codec = KeyCodec(self.key_fields, separator, self.positions, self.is_index, folds)
        self.serializer = get_serializer()  # chosen once: settings changes reload every definition
        self.conversions = Conversions.of(self.stored_fields, self.is_index)  # fields declaring cache_encode
        self.signer = get_signer()
        self.schema = schema.fingerprint(
            model,
            row.key_columns,
            row.value_columns,
            row.flags_column,
            row.cas_column,
            row.expire_time_column,
            separator,
        )

    def __repr__(self):
        return f"<Definition {self.name} -> {self.model._meta.label}>"

    @property
    def adapter(self) -> Adapter:
        return get_adapter(self.cache_alias)

    def log_fields(self, keys=None, error: BaseException | None = None) -> dict:
        """Return the ``extra`` of a log record about this container (and ``keys`` of it)."""
        return logfields.fields(container=self.name, cache=self.cache_alias, keys=keys, error=error)

    def db_alias(self) -> str:
        """Fill from the database writes go to, never from a lagging replica."""
        return self.database or router.db_for_write(self.model)

    def policy(self, operation: str) -> str:
        """Return the policy of an operation, refusing a disabled one.

        With the kill switch off (``CACHELAYER["ENABLED"] = False``) a caching
        read is a database read; writes still invalidate, so turning it back on
        serves nothing stale. A cache-only container has no other store."""
        field = policies.POLICY_FIELD[operation]
        value = self.policies[field]
        if value == policies.DISABLED:
            raise OperationDisabled(self.name, operation, field)
        if value == policies.CACHING and operation == "get" and not conf.get("ENABLED"):
            return policies.DB_ONLY
        return value


class Unreadable:
    """A Container row this process's code cannot build a definition from: it names a
    column the model here lacks (another release of the code, mid-deploy, added it),
    or is broken (check E010 says how).

    It is never read here, and this process cannot tell which of its keys a write
    touched: every write to its model bumps its generation instead (an extra miss
    for the processes that read it, never a stale row)."""

    def __init__(self, row, model):
        self.name, self.model = row.name, model
        self.cache_alias = row.cache_alias or conf.get("CACHE_ALIAS")
        self.keys = KeySpace(conf.get("KEY_PREFIX"), row.name)

    def __repr__(self) -> str:
        return f"<Unreadable {self.name} -> {self.model._meta.label}>"

    @property
    def adapter(self) -> Adapter:
        return get_adapter(self.cache_alias)
