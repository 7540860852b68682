"""Settings for Django's tests/runtests.py with cachelayer installed (scripts/django_suite.sh).

runtests.py replaces INSTALLED_APPS with its own ALWAYS_INSTALLED_APPS list
before it loads the apps, and reads this module on its first look at the
settings, which comes first: so cachelayer and the app that maps every model
(apps.py) join that list here. The database comes from CACHELAYER_DB (sqlite,
or a PostgreSQL/MariaDB URL; Django's suite also wants an "other" database).
"""

import os
import sys

import django

from demo_project.env import database_from_url

_runtests = sys.modules["__main__"]
if not hasattr(_runtests, "ALWAYS_INSTALLED_APPS"):
    raise RuntimeError("tests.djangosuite.settings is for Django's tests/runtests.py (scripts/django_suite.sh)")
# CACHELAYER_DJANGO_SUITE: "plain" (Django alone), "installed" (nothing mapped), "mapped".
MODE = os.environ.get("CACHELAYER_DJANGO_SUITE", "mapped")
_runtests.ALWAYS_INSTALLED_APPS += {
    "plain": [],
    "installed": ["cachelayer", "tests.djangosuite.apps.SuiteConfig"],
    "mapped": ["cachelayer", "tests.djangosuite.apps.MapEveryModelConfig"],
}[MODE]

_url = os.environ.get("CACHELAYER_DB", "sqlite")
if _url == "sqlite":
    DATABASES = {alias: {"ENGINE": "django.db.backends.sqlite3"} for alias in ("default", "other")}
else:
    _default = database_from_url(_url)
    _other = f"{_default['NAME']}_other"
    DATABASES = {"default": _default, "other": {**_default, "NAME": _other, "TEST": {"NAME": f"test_{_other}"}}}

# cachelayer's own cache, apart from the one Django's tests use and clear.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "cachelayer": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "cachelayer-djangosuite",
        "OPTIONS": {"MAX_ENTRIES": 10**7},
    },
}
CACHELAYER = {"CACHE_ALIAS": "cachelayer"}

SECRET_KEY = "django_tests_secret_key"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
if django.VERSION < (6, 0):  # as the release's tests/test_sqlite.py sets it (6.0's default is BigAutoField)
    DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = False
