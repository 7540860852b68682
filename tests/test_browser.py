"""A person's view: headless Chromium logs into the admin, edits a policy,
warms a container and reads the live statistics page and its freshness chart.

Screenshots go to test-output/, or to $CACHELAYER_SCREENSHOTS
(scripts/screenshots.sh points it at demo_project/screenshots/ for the README).
"""

import os
import shutil
import uuid
from pathlib import Path

import pytest
from django.core.management import call_command

from cachelayer.models import CachePolicy, Container
from cachelayer.tasks.monitoring import Monitor
from demo_project.demo.models import Country
from tests.conftest import MONITOR_DELAYS
from tests.test_inspect import STATS_PAGE
from tests.test_monitor import RUN
from tests.testapp.models import Item

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
OUTPUT = Path(os.environ.get("CACHELAYER_SCREENSHOTS") or Path(__file__).resolve().parent.parent / "test-output")


pytestmark = pytest.mark.one_database  # a browser over the admin: the pages, not the database, are under test


@pytest.fixture
def browser(monkeypatch):
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.fail("chromium / chromium-driver are missing: scripts/test.sh installs them")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must never download a browser
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


def test_admin_edit_warm_and_stats(browser, live_server, admin_user, settings):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    settings.CACHELAYER = {
        "CACHE_ALIAS": "memcached",
        "KEY_PREFIX": f"br{uuid.uuid4().hex[:10]}",
        "SOCKET_TIMEOUT": 5,  # a slow moment of memcached's must not make the page's read a database one
    }
    call_command("loaddata", "demo", verbosity=0)
    container = Container.objects.get(name="demo_country")
    container.policy = policy = CachePolicy.objects.create(policy_name="demo")
    container.save()
    OUTPUT.mkdir(exist_ok=True)

    def shows(words: str) -> bool:
        """Wait (up to 10 s) for the page after a click to show ``words``."""
        wait = WebDriverWait(browser, 10, ignored_exceptions=(StaleElementReferenceException,))
        wait.until(lambda b: words in b.find_element(By.TAG_NAME, "body").text)
        return True

    log_in(browser, live_server)

    browser.get(f"{live_server.url}/admin/cachelayer/cachepolicy/{policy.pk}/change/")
    Select(browser.find_element(By.NAME, "flush_policy")).select_by_value("caching")
    browser.find_element(By.NAME, "_save").click()
    assert shows("was changed successfully")
    policy.refresh_from_db()
    assert policy.flush_policy == "caching"

    browser.get(f"{live_server.url}/admin/cachelayer/container/{container.pk}/change/")
    shown = browser.find_elements(By.CSS_SELECTOR, "#id_key_columns optgroup:not([hidden])")
    assert [group.get_attribute("label") for group in shown] == ["demo.Country"]  # only the chosen model's fields
    chosen = Select(browser.find_element(By.ID, "id_key_columns")).all_selected_options
    assert [option.get_attribute("value") for option in chosen] == ["country"]

    browser.get(f"{live_server.url}/admin/cachelayer/container/")
    browser.find_element(By.CSS_SELECTOR, f"input[name=_selected_action][value='{container.pk}']").click()
    Select(browser.find_element(By.NAME, "action")).select_by_value("warm_containers")
    browser.find_element(By.NAME, "index").click()
    assert shows("demo_country: load 10 rows of demo.Country into cache 'memcached'")
    browser.save_screenshot(str(OUTPUT / "admin-warm-confirmation.png"))
    browser.find_element(By.CSS_SELECTOR, "input[value='Yes, warm']").click()
    assert shows("Container demo_country: 10 rows warmed, 0 already cached")

    for name in ("Japan", "Japan", "India", "Atlantis"):  # 2 hits, 1 miss (absent) after the warm
        Country.cached.get_many([name])
    browser.find_element(By.CSS_SELECTOR, ".object-tools a[href$='/container/stats/']").click()
    row = browser.find_element(By.XPATH, "//table[@id='stats-table']//tr[th='demo_country']").text
    assert row.split()[:4] == ["demo_country", "3", "1", "75.0%"]
    hits_bar = browser.find_element(By.CSS_SELECTOR, "#stats-chart rect.cl-hits")
    assert int(hits_bar.get_attribute("width")) == 360  # 3 of 4 lookups on a 480 px scale
    assert shows("4 lookups, 75.0% hits")
    browser.save_screenshot(str(OUTPUT / "admin-stats.png"))
    assert fits(browser)
    browser.get(f"{live_server.url}/admin/cachelayer/container/")
    assert "75.0%" in browser.find_element(By.CSS_SELECTOR, "td.field-stat_hit_ratio").text
    kind = browser.find_element(
        By.XPATH, "//tr[th[.//a[text()='demo_country']]]/td[contains(@class, 'field-kind')]/span"
    )
    assert kind.text == "key" and "one row per key" in kind.get_attribute("title")  # the sentence: a tooltip
    model = browser.find_element(By.XPATH, "//tr[th[.//a[text()='demo_country']]]/td[contains(@class, 'field-model')]")
    assert model.text == "demo.Country"
    browser.save_screenshot(str(OUTPUT / "admin-containers.png"))
    assert fits(browser)
    width, scroll = browser.execute_script(  # nor does the list's own box beside the filters
        "const box = document.querySelector('#changelist .results'); return [box.clientWidth, box.scrollWidth]"
    )
    assert scroll <= width, f"the container list is {scroll} px wide in its {width} px box"


def log_in(browser, live_server) -> None:
    """Log into the admin as ``admin_user``."""
    from selenium.webdriver.common.by import By

    browser.get(f"{live_server.url}/admin/login/")
    browser.find_element(By.NAME, "username").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys("password")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    browser.find_element(By.ID, "user-tools")  # logged in (waited for: implicitly_wait)


# Where the browser paints each point of a polyline: the elements hit there (all of them, overlaps too).
PAINTED_AT_POINTS = """
const line = arguments[0], matrix = line.getScreenCTM();
return Array.from(line.points, point => {
    const at = new DOMPoint(point.x, point.y).matrixTransform(matrix);
    return document.elementsFromPoint(at.x, at.y).includes(line);
});
"""


@pytest.mark.caches("memcached")  # the live server's threads and this one read the published window
@pytest.mark.parametrize(  # a bucket (a point) every 0.1 s: one per write; every 60 s: the first one, drawn twice
    "window, points", [(6.0, 3), (3600.0, 2)], ids=["three-buckets", "one-bucket"]
)
def test_the_freshness_chart_is_drawn(browser, live_server, admin_user, sampled, settings, window, points):
    from selenium.webdriver.common.by import By

    settings.CACHELAYER = {**settings.CACHELAYER, "MONITOR_WINDOW": window}
    monitor = Monitor(["testapp_item"])
    for pk in range(1, 4):  # writes apart in time: in a short window their checks fall in buckets of their own
        Item.objects.create(id=pk, value=pk)
        monitor.run(0.3)
    monitor.run(RUN)
    log_in(browser, live_server)
    browser.get(f"{live_server.url}{STATS_PAGE}")
    lines = browser.find_elements(
        By.CSS_SELECTOR, "svg.cl-freshness[aria-label^='freshness of testapp_item '] polyline"
    )
    assert len(lines) == len(MONITOR_DELAYS)
    browser.execute_script("arguments[0].scrollIntoView()", lines[0])
    for line in lines:  # painted by Chromium at each of its points, not only present in the HTML
        painted = browser.execute_script(PAINTED_AT_POINTS, line)
        assert len(painted) == points and all(painted), (painted, line.get_attribute("outerHTML"))
    browser.save_screenshot(str(OUTPUT / f"admin-freshness-{int(window)}s.png"))


def fits(browser) -> bool:
    """The page needs no horizontal scrollbar at the window's 1280 px (a laptop's)."""
    width, scroll = browser.execute_script(
        "return [document.documentElement.clientWidth, document.documentElement.scrollWidth]"
    )
    assert scroll <= width, f"the page is {scroll} px wide in a {width} px window"
    return True
