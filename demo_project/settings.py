"""Settings of the demo site; the database and cache come from the environment.

CACHELAYER_DB and CACHELAYER_CACHE choose the backends (see demo_project/env.py).
"""

import importlib.util
import os

from demo_project.env import BASE_DIR, cache_setting, database_setting

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "cachelayer-demo-insecure-key")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", "testserver"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "cachelayer",
    "demo_project.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "demo_project.urls"
WSGI_APPLICATION = "demo_project.wsgi.application"
ASGI_APPLICATION = "demo_project.asgi.application"

# django-debug-toolbar with cachelayer's panel, when it is installed and DEBUG is on.
if DEBUG and importlib.util.find_spec("debug_toolbar"):
    INSTALLED_APPS.append("debug_toolbar")
    MIDDLEWARE.insert(0, "debug_toolbar.middleware.DebugToolbarMiddleware")
    INTERNAL_IPS = ["127.0.0.1", "::1"]
    from debug_toolbar.settings import PANELS_DEFAULTS

    # The toolbar's own cache panel is left out: it sees Django's cache objects only,
    # never cachelayer's long-lived clients, and its ready() wraps CacheHandler in
    # every process (this test suite's too).
    DEBUG_TOOLBAR_PANELS = [
        *(panel for panel in PANELS_DEFAULTS if panel != "debug_toolbar.panels.cache.CachePanel"),
        "cachelayer.contrib.debug_toolbar.panels.CachelayerPanel",
    ]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "demo_project" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": database_setting()}
CACHES = {"default": cache_setting()}

CACHELAYER = {}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
