"""Install cachelayer as a new user would: build the wheel, install it into a
fresh virtualenv, start a project with django-admin and read through the cache.

The virtualenv is kept under test-output/, keyed by the wheel's contents, so
a second run (the other database's half of the test command) only reuses it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import django
import pytest

from tests.conftest import database_name
from tests.test_migrations import fresh_database  # noqa: F401  # a fixture: a new, empty database

pytestmark = pytest.mark.slow  # builds a wheel and installs it into a fresh venv


# Markers, not fixtures: a fixture that skips runs after the module's wheel and venv
# fixtures were built (pytest sets up wider scopes first), in every run that skips.
sqlite_half = pytest.mark.skipif(
    database_name() != "sqlite",
    reason="independent of the database under test: runs in the sqlite half",  # and the runs share the kept venv
)
django6_postgresql_half = pytest.mark.skipif(
    database_name() != "postgresql" or django.VERSION[0] < 6,
    reason="a new project on PostgreSQL with Django 6.0: runs in the Django 6.0 pass on PostgreSQL",
)


ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "test-output"
# Source-tree leftovers that must never reach the build (a stale build/ would leak files).
NOT_SOURCE = (
    ".git",
    ".venv*",
    "test-output",
    "bench-output",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    "db.sqlite3",
)

MODELS = """
from django.db import models

from cachelayer import CachedModelMixin


class Product(CachedModelMixin, models.Model):
    cache_key_fields = "sku"

    sku = models.CharField(max_length=20, unique=True)
    price = models.IntegerField()
"""

# Run inside the new project with its own interpreter: proves the installed
# wheel (not this checkout) reads through the cache.
CHECK = """
import os, sys
from pathlib import Path

import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
django.setup()

import cachelayer
from django.contrib.auth.models import User
from django.contrib.staticfiles import finders
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from shop.models import Product

assert Path(cachelayer.__file__).is_relative_to(sys.prefix), cachelayer.__file__
Product.objects.create(sku="A-1", price=5)
with CaptureQueriesContext(connection) as first:
    assert Product.cached.get("A-1").price == 5
with CaptureQueriesContext(connection) as second:
    assert Product.cached.get("A-1").price == 5
# the first read also loads the container definitions (once per process)
assert len(first) >= 1 and len(second) == 0, (len(first), len(second))
assert finders.find("cachelayer/container_form.js")
client = Client(HTTP_HOST="localhost")  # DEBUG: startproject allows localhost
client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw"))
page = client.get("/admin/cachelayer/container/stats/")
assert page.status_code == 200 and b"product" in page.content, page.status_code
print("first read", len(first), "queries; second read", len(second), "queries")
"""


def run(*args, cwd=None, env=None) -> str:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{' '.join(map(str, args))} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def clean_env() -> dict:
    """Return this environment without what points at the checkout or the test settings."""
    drop = {"PYTHONPATH", "DJANGO_SETTINGS_MODULE", "VIRTUAL_ENV", "CACHELAYER_DB", "CACHELAYER_CACHE"}
    return {k: v for k, v in os.environ.items() if k not in drop}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("source") / "cachelayer-src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    out = tmp_path_factory.mktemp("wheel")
    run(sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(out), env=clean_env())
    (built,) = out.glob("cachelayer-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel) -> Path:
    """A virtualenv with the wheel (and its ``postgresql`` extra) and Django only, on this
    interpreter, reused while the wheel's contents are unchanged."""
    with zipfile.ZipFile(wheel) as archive:
        digest = hashlib.sha256()
        for info in sorted(archive.infolist(), key=lambda i: i.filename):
            digest.update(f"{info.filename}:{info.CRC}\n".encode())
    python = f"{sys.version_info[0]}.{sys.version_info[1]}"
    path = OUTPUT / f"packaging-venv-{digest.hexdigest()[:16]}-python{python}-django{django.__version__}"
    if not (path / ".complete").exists():
        for old in OUTPUT.glob(f"packaging-venv-*-python{python}-*"):
            shutil.rmtree(old, ignore_errors=True)
        run(sys.executable, "-m", "venv", str(path))
        # Django pinned to this interpreter's version: pip's cache answers offline.
        requirement = f"{wheel}[postgresql]"
        run(str(path / "bin" / "pip"), "install", "-q", requirement, f"Django=={django.__version__}", env=clean_env())
        (path / ".complete").touch()
    return path


@sqlite_half
def test_the_wheel_holds_the_app_and_nothing_else(wheel):
    import cachelayer

    names = zipfile.ZipFile(wheel).namelist()
    assert wheel.name == f"cachelayer-{cachelayer.__version__}-py3-none-any.whl"
    for needed in (
        "cachelayer/py.typed",
        "cachelayer/migrations/0001_initial.py",
        "cachelayer/templates/admin/cachelayer/container/stats.html",
        "cachelayer/static/cachelayer/container_form.js",
        "cachelayer/management/commands/cache_warm.py",
        "cachelayer/templates/cachelayer/debug_toolbar/panel.html",
        "cachelayer/contrib/debug_toolbar/panels.py",
    ):
        assert needed in names, needed
    tops = {name.split("/")[0] for name in names}
    assert tops == {"cachelayer", f"cachelayer-{cachelayer.__version__}.dist-info"}, tops
    migrations = {n for n in names if n.startswith("cachelayer/migrations/")}
    assert migrations == {str(p.relative_to(ROOT)) for p in (ROOT / "cachelayer" / "migrations").glob("*.py")}
    metadata = zipfile.ZipFile(wheel).read(f"cachelayer-{cachelayer.__version__}.dist-info/METADATA").decode()
    assert "Requires-Dist: Django<6.1,>=5.2" in metadata
    for extra in ("memcached", "pylibmc", "redis", "mysql", "postgresql", "binlog", "debug"):
        assert f"Provides-Extra: {extra}" in metadata


@sqlite_half
def test_the_wheel_carries_the_licence(wheel):
    import cachelayer

    info = f"cachelayer-{cachelayer.__version__}.dist-info"
    archive = zipfile.ZipFile(wheel)
    metadata = archive.read(f"{info}/METADATA").decode()
    assert "License-Expression: BSD-3-Clause" in metadata and "License-File: LICENSE" in metadata
    assert archive.read(f"{info}/licenses/LICENSE") == (ROOT / "LICENSE").read_bytes()


@sqlite_half
def test_a_new_project_reads_through_the_cache(venv, tmp_path):
    python, env = str(venv / "bin" / "python"), clean_env()
    import cachelayer

    assert (
        run(python, "-c", "import cachelayer; print(cachelayer.__version__)", cwd=tmp_path, env=env).strip()
        == cachelayer.__version__
    )
    run(str(venv / "bin" / "django-admin"), "startproject", "mysite", str(tmp_path), env=env)
    run(python, "manage.py", "startapp", "shop", cwd=tmp_path, env=env)
    (tmp_path / "shop" / "models.py").write_text(MODELS)
    settings = tmp_path / "mysite" / "settings.py"
    text = settings.read_text().replace(
        "'django.contrib.staticfiles',", "'django.contrib.staticfiles',\n    'cachelayer',\n    'shop',"
    )
    assert "'cachelayer'" in text
    # Django's default cache is LocMem already; say it anyway, as the README's Install section does.
    text += textwrap.dedent("""
        CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
        CACHELAYER = {"CACHE_ALIAS": "default"}
    """)
    settings.write_text(text)
    run(python, "manage.py", "makemigrations", "shop", cwd=tmp_path, env=env)
    run(python, "manage.py", "migrate", "-v", "0", cwd=tmp_path, env=env)
    run(python, "manage.py", "check", "--fail-level", "WARNING", cwd=tmp_path, env=env)
    (tmp_path / "check_cache.py").write_text(CHECK)
    out = run(python, "check_cache.py", cwd=tmp_path, env=env)
    assert "second read 0 queries" in out


SHOP_ON_POSTGRESQL = (
    MODELS
    + """

class Tag(CachedModelMixin, models.Model):
    cache_indexes = ("products",)  # an m2m: its through rows, by tag (crashed migrate on Django 6.0)

    name = models.CharField(max_length=20)
    products = models.ManyToManyField(Product, related_name="tags")
"""
)

# Every write path a new project meets, each followed by a read through the cache.
CHECK_FRESH = """
import os
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
django.setup()

from django.db import connection
from django.test.utils import CaptureQueriesContext
from shop.models import Product, Tag

assert connection.vendor == "postgresql" and django.VERSION[0] >= 6, (connection.vendor, django.VERSION)


def price(sku):
    try:
        return Product.cached.get(sku).price
    except Product.DoesNotExist:
        return None


product = Product.objects.create(sku="A-1", price=5)
assert price("A-1") == 5
with CaptureQueriesContext(connection) as hit:
    assert price("A-1") == 5
assert len(hit) == 0, hit.captured_queries
product.price = 6
product.save()
assert price("A-1") == 6
Product.objects.filter(sku="A-1").update(price=7)
assert price("A-1") == 7
assert price("B-1") is None  # cached as absent
Product.objects.bulk_create([Product(sku="B-1", price=1), Product(sku="B-2", price=2)])
assert price("B-1") == 1
rows = list(Product.objects.filter(sku__startswith="B-"))
for row in rows:
    row.price = 10
Product.objects.bulk_update(rows, ["price"])
assert (price("B-1"), price("B-2")) == (10, 10)
tag = Tag.objects.create(name="new")
assert [p.sku for p in tag.cached_related("products")] == []
tag.products.add(product, *rows)
assert [p.sku for p in tag.cached_related("products")] == ["A-1", "B-1", "B-2"]
tag.products.remove(rows[0])
assert [p.sku for p in tag.cached_related("products")] == ["A-1", "B-2"]
product.delete()
assert price("A-1") is None
assert [p.sku for p in tag.cached_related("products")] == ["B-2"]
print("fresh on", connection.vendor, "with Django", django.__version__)
"""


@pytest.mark.wheel
@django6_postgresql_half
def test_a_new_project_on_postgresql_with_django_6_stays_fresh(fresh_database, venv, tmp_path):
    """A new project installs the wheel with Django 6.0 (the newest Python on the machine),
    migrates a fresh PostgreSQL database, hits with 0 SQL and stays fresh after save,
    update(), bulk writes, m2m changes and deletes."""
    from django.db import connection

    python, env = str(venv / "bin" / "python"), clean_env()
    run(str(venv / "bin" / "django-admin"), "startproject", "mysite", str(tmp_path), env=env)
    run(python, "manage.py", "startapp", "shop", cwd=tmp_path, env=env)
    (tmp_path / "shop" / "models.py").write_text(SHOP_ON_POSTGRESQL)
    params = connection.settings_dict
    database = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": fresh_database.rsplit("/", 1)[1],
        **{key: params[key] for key in ("USER", "PASSWORD", "HOST", "PORT")},
    }
    settings = tmp_path / "mysite" / "settings.py"
    text = settings.read_text().replace(
        "'django.contrib.staticfiles',", "'django.contrib.staticfiles',\n    'cachelayer',\n    'shop',"
    )
    text += textwrap.dedent(f"""
        DATABASES = {{"default": {database!r}}}
        CACHES = {{"default": {{"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}}}
        CACHELAYER = {{"CACHE_ALIAS": "default"}}
    """)
    settings.write_text(text)
    run(python, "manage.py", "makemigrations", "shop", cwd=tmp_path, env=env)
    run(python, "manage.py", "migrate", "-v", "0", cwd=tmp_path, env=env)
    run(python, "manage.py", "check", "--fail-level", "WARNING", cwd=tmp_path, env=env)
    (tmp_path / "check_fresh.py").write_text(CHECK_FRESH)
    assert "fresh on postgresql with Django 6." in run(python, "check_fresh.py", cwd=tmp_path, env=env)
