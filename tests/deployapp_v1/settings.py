"""The test settings as the first release of tests/deployapp had them."""

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS

INSTALLED_APPS = [app if app != "tests.deployapp" else "tests.deployapp_v1" for app in INSTALLED_APPS]
MIGRATION_MODULES = {"deployapp": "tests.deployapp.migrations"}
