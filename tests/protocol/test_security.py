"""cache_serve is safe by default: opt-in exposure, sensitive models refused, authentication.

The first test replays the exploit of issue 21 (defect 1) against a real
cache_serve: a container mapping auth.User (key username; values
password|is_superuser; a policy whose flush deletes rows), as a staff user
could add it in the admin before this rule. On e46ce3d the client read the
password hash, made the victim a superuser, added a superuser and deleted
every row with flush_all.
"""

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from pymemcache.exceptions import MemcacheClientError

from cachelayer.checks import check_containers
from cachelayer.models import Container
from cachelayer.tasks.autocontainers import create_missing
from demo_project.demo.models import Country
from tests.layer.test_repository import make_container
from tests.protocol.conftest import served_container
from tests.testapp.models import KeyValue

CHANGELIST = "/admin/cachelayer/container/"
MALLORY_HASH = "pbkdf2_sha256$1000000$salt$mallory"  # a hash of a password the attacker chose


@pytest.fixture
def users(backend):
    """A victim and an innocent bystander, and the container the review's staff user mapped."""
    victim = User.objects.create_user("victim", password="victim-password")
    User.objects.create_user("bystander", password="bystander-password")
    make_container(
        "users",
        User,
        "caching",
        exposed=True,
        key_columns="username",
        value_columns="password|is_superuser",
    )
    return victim


def test_the_review_exploit_through_cache_serve_fails(users, start_server):
    client = start_server().client()
    assert client.get("@@users.victim") is None  # main: the victim's password hash
    with pytest.raises(MemcacheClientError, match="not exposed"):
        client.set("@@users.victim", f"{MALLORY_HASH}|1", noreply=False)
    with pytest.raises(MemcacheClientError, match="not exposed"):
        client.add("@@users.mallory", f"{MALLORY_HASH}|1", noreply=False)
    client.get("@@users")  # switch to it (refused: the connection stays on the default container), then flush
    with pytest.raises(MemcacheClientError, match="not exposed"):
        client.flush_all(noreply=False)
    victim = User.objects.get(username="victim")
    assert (victim.is_superuser, victim.check_password("victim-password")) == (False, True)
    assert not User.objects.filter(username="mallory").exists()
    assert User.objects.count() == 2


def test_a_sensitive_container_in_the_database_is_a_system_check_error(users):
    errors = [m for m in check_containers(databases=["default"]) if m.id == "cachelayer.E030"]
    assert [m.obj.name for m in errors] == ["users"]
    assert "auth.User is listed in PROTOCOL_SENSITIVE_MODELS" in errors[0].msg and errors[0].hint


def test_an_allowed_sensitive_model_is_read_only_and_never_flushed_to_the_database(users, start_server, settings):
    settings.CACHELAYER = {**settings.CACHELAYER, "PROTOCOL_SENSITIVE_ALLOWED": {"auth.User": "read"}}
    client = start_server().client()
    assert client.get("@@users.victim").decode().endswith("|False")  # named in the setting: readable
    with pytest.raises(MemcacheClientError, match="read-only"):
        client.set("@@users.victim", f"{MALLORY_HASH}|1", noreply=False)
    settings.CACHELAYER = {**settings.CACHELAYER, "PROTOCOL_SENSITIVE_ALLOWED": {"auth.User": "write"}}
    client.get("@@users")
    with pytest.raises(MemcacheClientError, match="never deletes its rows"):
        client.flush_all(noreply=False)
    assert User.objects.count() == 2


def test_the_admin_refuses_to_expose_a_sensitive_model(client, transactional_db):
    staff = User.objects.create_user("staff", password="pw", is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(codename__in=["add_container", "change_container"]))
    client.force_login(staff)
    form = {
        "name": "users",
        "content_type": ContentType.objects.get_for_model(User).pk,
        "enabled": "on",
        "exposed": "on",
        "key_columns": ["username"],
        "value_columns": ["password", "is_superuser"],
    }
    response = client.post(f"{CHANGELIST}add/", form)
    assert response.status_code == 200 and "cannot be exposed to cache_serve" in response.content.decode()
    assert not Container.objects.filter(name="users").exists()
    del form["exposed"]  # mapped but not served: allowed
    assert client.post(f"{CHANGELIST}add/", form).status_code == 302


def test_a_model_with_a_token_field_is_sensitive_unless_the_rule_is_changed(transactional_db, settings):
    from cachelayer.core.sensitivity import reason

    assert reason(KeyValue) is None
    settings.CACHELAYER = {"PROTOCOL_SENSITIVE_FIELDS": r"^value$"}  # the rule is a setting
    assert reason(KeyValue) == "testapp.KeyValue.value (TextField) looks like a credential"


def test_containers_are_not_exposed_unless_someone_says_so(admin_client, transactional_db):
    assert 'name="exposed" id="id_exposed" checked' not in admin_client.get(f"{CHANGELIST}add/").content.decode()
    Container.objects.all().delete()
    assert create_missing()  # the containers migrate creates for CachedModelMixin models
    assert not Container.objects.filter(exposed=True).exists()


def test_flush_all_of_an_auto_created_container_never_deletes_rows(backend, start_server):
    call_command("loaddata", "demo", verbosity=0)
    container = Container.objects.get(name="demo_country")  # created by migrate, default policy
    container.exposed = True
    container.save()
    rows = Country.objects.count()
    client = start_server().client()
    client.get("@@demo_country")
    assert client.flush_all(noreply=False) is True
    assert rows and Country.objects.count() == rows


def test_flush_all_deletes_rows_only_under_a_policy_that_says_so(backend, start_server):
    served_container("default", KeyValue, "db_only", key_columns="key", value_columns="value")
    KeyValue.objects.create(key="k", value="v")
    assert start_server().client().flush_all(noreply=False) is True
    assert not KeyValue.objects.exists()  # flush_policy = db_only: the explicit opt-in


def test_an_allowed_sensitive_model_needs_policies_that_keep_its_rows(transactional_db, settings):
    from django.core.exceptions import ValidationError

    from cachelayer.models import CachePolicy

    users = Container(
        name="users", content_type=ContentType.objects.get_for_model(User), key_columns="username", exposed=True
    )
    settings.CACHELAYER = {"PROTOCOL_SENSITIVE_ALLOWED": {"auth.User": "read"}}
    with pytest.raises(ValidationError, match="only read it, but its set/delete policy writes the database"):
        users.clean()  # the default policy writes rows
    users.policy = CachePolicy.objects.create(policy_name="reads", set_policy="cache_only", delete_policy="cache_only")
    users.clean()
    settings.CACHELAYER = {"PROTOCOL_SENSITIVE_ALLOWED": {"auth.User": "write"}}
    users.policy = CachePolicy.objects.create(policy_name="truncates", flush_policy="caching")
    with pytest.raises(ValidationError, match="its flush policy deletes rows"):
        users.clean()


def test_migration_0005_unexposes_the_auto_created_containers_nobody_edited(transactional_db):
    import importlib

    from django.apps import apps
    from django.db import connection

    migration = importlib.import_module("cachelayer.migrations.0006_exposure_opt_in")
    Container.objects.update(exposed=True)  # as the old default left them
    edited = Container.objects.filter(declared=True).first()
    Container.objects.filter(pk=edited.pk).update(declared=False)  # edited in the admin: its value was chosen
    with connection.schema_editor() as editor:
        migration.unexpose_declared(apps, editor)
    assert list(Container.objects.filter(exposed=True)) == [edited]
