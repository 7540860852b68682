"""A visitor's view of the demo in headless Chromium: a country page says miss,
then hit with 0 SQL; the debug toolbar's Cache layer panel lists the read; an
edit shows the invalidation and the row version it moved.

Screenshots go where tests/test_browser.py puts its own (the README's come
from here through scripts/screenshots.sh).
"""

import uuid

import pytest
from django.apps import apps
from django.core.management import call_command

from cachelayer.engine import stats
from tests.test_browser import OUTPUT, browser  # noqa: F401 (fixture: headless Chromium)

pytestmark = pytest.mark.one_database  # a browser over the demo: the pages, not the database, are under test


@pytest.fixture
def demo_site(transactional_db, settings, live_server):
    if not apps.is_installed("debug_toolbar"):
        pytest.fail("django-debug-toolbar is not installed (requirements.txt has it; DJANGO_DEBUG=0 leaves it out)")
    settings.DEBUG = True  # the toolbar shows only under DEBUG, which the test runner turns off
    settings.CACHELAYER = {
        "CACHE_ALIAS": "memcached",
        "KEY_PREFIX": f"db{uuid.uuid4().hex[:10]}",
        # A page must say hit or miss: with the runs side by side, memcached once took more than
        # the default 0.5 s, and the database served the read (no hit, no miss).
        "SOCKET_TIMEOUT": 5,
    }
    call_command("loaddata", "demo", verbosity=0)
    OUTPUT.mkdir(exist_ok=True)
    yield live_server.url
    stats.reset()  # this process's counters: tests/test_browser.py counts its own reads


def text(browser, selector: str) -> str:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.CSS_SELECTOR, selector).text


def test_country_page_toolbar_panel_and_edit(browser, demo_site):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{demo_site}/countries/Japan/")
    assert text(browser, "#outcome") == "miss"
    browser.get(f"{demo_site}/countries/Japan/")
    assert (text(browser, "#outcome"), text(browser, "#cached-queries"), text(browser, "#plain-queries")) == (
        "hit",
        "0",
        "1",
    )

    # The toolbar lives in a shadow root; its panel content is fetched when the panel opens.
    toolbar = browser.find_element(By.ID, "djDebugRoot").shadow_root
    button = toolbar.find_element(By.CSS_SELECTOR, "#djdt-CachelayerPanel a")
    assert "1 hit, 0 misses" in button.text
    button.click()
    rows = WebDriverWait(browser, 10).until(
        lambda b: toolbar.find_elements(By.CSS_SELECTOR, "#cachelayer-events tbody tr")
    )
    assert [row.text.split()[1:4] for row in rows] == [["hit", "demo_country", "demo.Country"]]
    # the key as cached: canonical, so folded by the column's collation on MariaDB (JAPAN)
    assert "japan" in rows[0].text.lower() and "1 saved" in rows[0].text
    summary = [cell.text for cell in toolbar.find_elements(By.CSS_SELECTOR, "#cachelayer-summary tbody td")]
    assert summary[:4] == ["1", "0", "0", "1"]  # hits, misses, invalidations, SQL saved
    assert int(summary[4]) >= 1 and f"{summary[4]} round trip" in button.text  # the hit's multi-get at least
    browser.save_screenshot(str(OUTPUT / "demo-toolbar-panel.png"))
    toolbar.find_element(By.ID, "djHideToolBarButton").click()  # remembered in a cookie: pages alone below

    browser.get(f"{demo_site}/")
    assert "Live statistics" in text(browser, "main") and "Cache layer" in text(browser, "main")
    browser.save_screenshot(str(OUTPUT / "demo-home.png"))
    browser.get(f"{demo_site}/countries/Japan/")
    browser.save_screenshot(str(OUTPUT / "demo-country-hit.png"))
    field = browser.find_element(By.NAME, "population")
    field.clear()
    field.send_keys("125000001")
    browser.find_element(By.CSS_SELECTOR, "#edit button[type=submit]").click()
    notice = WebDriverWait(browser, 10).until(lambda b: b.find_element(By.ID, "last-write"))
    assert "container demo_country, key japan" in notice.text.lower()  # canonical: JAPAN on MariaDB
    assert int(text(browser, "#version-after")) == int(text(browser, "#version-before")) + 1
    assert int(text(browser, "#version")) == int(text(browser, "#version-after"))
    assert (text(browser, "#outcome"), text(browser, "#population")) == ("miss", "125000001")
    browser.save_screenshot(str(OUTPUT / "demo-invalidation.png"))
    browser.get(f"{demo_site}/countries/Japan/")
    assert text(browser, "#outcome") == "hit" and not browser.find_elements(By.ID, "last-write")
