"""The admin in a real browser: Debian's ``chromium``, headless, driven by Selenium through
Debian's ``chromedriver``, against Django's live server and a private Redis. It logs in and
clicks through retry, requeue, purge and delete, and keeps a screenshot of every page it saw
in ``$Q_SCREENSHOTS`` (default: ``<tmp>/q-admin-screenshots``), which CI prints and keeps.

The window is 1280 x 800 with Django's nav sidebar open (its default): on every list page the
tables fit their box (no sideways scroll) and no cell wraps over two lines.

Skipped locally when chromium or chromedriver is missing (``.ci/run`` installs both).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from packages.qdjango.tests import jobs
from tests.support.servers import service_missing

from qcore import TaskMessage
from qdjango import async_task, schedule
from qdjango.models import Failure, Schedule

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,800",
)


# What does not fit at this width: the page or a table's box scrolling sideways (a table wider
# than the box it is in), and a cell whose text wraps over more than two lines.
OVERFLOWS = """
const found = [];
const page = document.documentElement;
if (!document.querySelector('#main.shifted')) found.push('the nav sidebar is closed');
if (page.scrollWidth > page.clientWidth) {
  found.push(`the page scrolls sideways: ${page.scrollWidth} > ${page.clientWidth} px`);
}
for (const table of document.querySelectorAll('#result_list, .q-page table')) {
  const name = table.id || table.className;
  const box = table.closest('.results, .module') || table.parentElement;
  if (box.scrollWidth > box.clientWidth) {
    found.push(`${name} scrolls sideways: ${box.scrollWidth} > ${box.clientWidth} px`);
  }
  for (const cell of table.querySelectorAll('tbody td, tbody th')) {
    // A clamped text (a reason, an error line) is seen as tall as its box: the lines it hides
    // are laid out all the same, and a range over them measures them too.
    const clamp = cell.querySelector('.q-clamp');
    const style = getComputedStyle(clamp || cell);
    const line = parseFloat(style.lineHeight) || 1.2 * parseFloat(style.fontSize);
    let box = clamp;
    if (!box) {
      box = document.createRange();
      box.selectNodeContents(cell);
    }
    const lines = Math.round(box.getBoundingClientRect().height / line);
    if (lines > 2) found.push(`${name}: "${cell.textContent.trim()}" wraps over ${lines} lines`);
  }
}
return found;
"""


def screenshots_dir() -> Path:
    folder = Path(
        os.environ.get("Q_SCREENSHOTS") or Path(tempfile.gettempdir()) / "q-admin-screenshots"
    )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.path.exists(path):
            service_missing(f"{path} is missing (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    profile = tmp_path / "chromium-profile"  # a fresh profile for every run
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


class Admin:
    """The steps of the walk, each ending with a screenshot."""

    def __init__(self, driver: Any, base: str, prefix: str = "") -> None:
        self.driver = driver
        self.base = base
        self.prefix = prefix  # each walk's screenshots under names of their own
        self.shots = screenshots_dir()
        self.count = 0

    def shot(self, name: str) -> None:
        self.count += 1
        self.driver.save_screenshot(str(self.shots / f"{self.prefix}{self.count:02d}-{name}.png"))

    def open(self, path: str, name: str) -> None:
        self.driver.get(self.base + path)
        self.shot(name)

    def open_list(self, path: str, name: str) -> None:
        """Open a list page and check that it fits the window."""
        self.open(path, name)
        overflows = self.driver.execute_script(OVERFLOWS)
        assert not overflows, f"{path} does not fit 1280 px: {overflows}"

    def find(self, css: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def finds(self, css: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def text(self) -> str:
        return str(self.find("body").text)

    def log_in(self, user: str, password: str) -> None:
        self.open("/admin/login/", "login")
        self.find("#id_username").send_keys(user)
        self.find("#id_password").send_keys(password)
        self.find("input[type=submit]").click()
        self.shot("index")

    def action(self, name: str) -> None:
        from selenium.webdriver.support.ui import Select

        Select(self.find("select[name=action]")).select_by_value(name)
        self.find("button[name=index]").click()


def _dead_letter(reason: str) -> str:
    from qdjango.conf import task_codec
    from qdjango.connection import transport

    t = transport()
    message = TaskMessage.new(jobs.add, (2, 3))
    t.enqueue(message.id, task_codec().encode_message(message))
    [delivery] = t.fetch("browser-test", count=1)
    assert t.dead_letter(delivery, reason)
    return message.id


def test_the_admin_clicked_through_in_chromium(
    live_server: Any, q_cluster: dict[str, Any], browser: Any, db_alias: str
) -> None:
    if db_alias != "default":
        pytest.skip("one browser walk is enough: it runs on SQLite")
    from django.contrib.auth.models import User

    from qdjango.connection import transport

    User.objects.create_superuser("admin", "admin@example.com", "pw-for-the-browser")
    with pytest.raises(ValueError, match="fails for the browser"):
        async_task(jobs.fail, "fails for the browser", sync=True)
    ok = async_task(jobs.add, 40, 2, sync=True)
    failed = Failure.objects.get()
    nightly = schedule(
        "packages.qdjango.tests.jobs.add", 1, 2, name="the nightly report for the browser",
        schedule_type="C", cron="30 3 * * *",
    )  # fmt: skip
    Schedule.objects.filter(pk=nightly.pk).update(task=ok)  # as if it had fired
    admin = Admin(browser, live_server.url)
    admin.log_in("admin", "pw-for-the-browser")
    assert "Queued tasks" in admin.text() and "All tasks" in admin.text()

    # All tasks, successful ones, scheduled ones; then retry a failure from the failed list.
    admin.open_list("/admin/qdjango/task/", "all-tasks")
    assert failed.name in admin.text() and ok
    admin.open_list("/admin/qdjango/success/", "successful-tasks")
    admin.open_list("/admin/qdjango/schedule/", "scheduled-tasks")
    assert "the nightly report for the browser" in admin.text()
    admin.open_list("/admin/qdjango/failure/", "failed-tasks")
    assert "ValueError: fails for the browser" in admin.text()
    admin.find(f"input.action-select[value='{failed.pk}']").click()
    admin.action("retry")
    admin.shot("retried")
    assert "queued again as new tasks" in admin.text()
    assert transport().queue_size() == 1

    # The retried task waits, beside a delayed one: the Queued tasks page shows them, and
    # deletes the first.
    async_task(
        jobs.echo, "an invoice", customer="a customer with a rather long name, Ltd.",
        q_options={"countdown": 3600, "task_name": "monthly-invoices-for-every-customer-of-ours"},
    )  # fmt: skip
    admin.open_list("/admin/qdjango/queuedtask/", "queued-tasks")
    assert "…jobs.fail" in admin.text()  # the full path is the cell's title
    assert admin.finds(".q-queued td[title='packages.qdjango.tests.jobs.fail']")
    admin.finds(".q-queued input.action-select")[0].click()
    admin.find("#q-queued-form input[type=submit]").click()
    admin.shot("queued-deleted")
    assert "1 waiting task(s) deleted" in admin.text()
    assert transport().queue_size() == 0

    # Dead letters on the Queue page: requeue one, purge the other.
    requeue_id = _dead_letter("dead for the browser (requeue)")
    # a reason as long as a real one (an UnknownKey's): held to two lines, all of it in the title
    purge_id = _dead_letter(
        "dead for the browser (purge): the payload was signed with key id 34d35a64, which is "
        "neither the current key nor a fallback key of this site"
    )
    admin.open_list("/admin/qdjango/queuestatus/", "queue")
    assert "dead for the browser (requeue)" in admin.text()
    browser.execute_script("document.querySelector('#q-dead').scrollIntoView()")
    admin.shot("queue-dead-letters")
    admin.find(f"#q-dead input[value='{requeue_id}']").click()
    admin.find("#q-dead ~ .submit-row button[value=requeue]").click()
    admin.shot("requeued")
    assert "1 dead letter(s) queued again." in admin.text()
    admin.find(f"#q-dead input[value='{purge_id}']").click()
    admin.find("#q-dead ~ .submit-row button[value=purge]").click()
    admin.shot("purged")
    assert "1 dead letter(s) deleted." in admin.text()
    assert transport().dead_size() == 0 and transport().queue_size() == 1

    # Delete the failure for good, through Django's confirmation page.
    admin.open("/admin/qdjango/failure/", "failed-before-delete")
    admin.find(f"input.action-select[value='{failed.pk}']").click()
    admin.action("delete_selected")
    admin.shot("delete-confirm")
    admin.find("input[type=submit]").click()
    admin.shot("deleted")
    assert not Failure.objects.filter(pk=failed.pk).exists()

    # The charts are drawn by the server, and the browser shows them.
    admin.open_list("/admin/qdjango/queuestatus/", "queue-with-charts")
    sizes = [img.get_property("naturalWidth") for img in admin.finds("img.q-chart")]
    assert sizes == [560, 560], sizes


def test_the_queue_page_of_a_busy_cluster_fits_in_chromium(
    live_server: Any, cluster: Any, browser: Any, db_alias: str
) -> None:
    """The Queue page's tables of clusters, running and in-flight tasks, filled by a real
    cluster running a task, fit 1280 px as the dead letters do."""
    if db_alias != "default":
        pytest.skip("one browser walk is enough: it runs on SQLite")
    from django.contrib.auth.models import User
    from tests.cluster.support import eventually

    from qdjango import fetch, running

    User.objects.create_superuser("admin", "admin@example.com", "pw-for-the-browser")
    name = "a-long-running-export-of-every-invoice-for-the-browser"
    admin = Admin(browser, live_server.url, prefix="busy-")
    admin.log_in("admin", "pw-for-the-browser")  # first: on a loaded machine it takes seconds
    # Long enough to be still running when the page is read (3 s was not, once, in CI).
    task_id = async_task(jobs.sleep, 10, q_options={"task_name": name})
    eventually(lambda: running(task_id), what="the task to run")
    admin.open_list("/admin/qdjango/queuestatus/", "queue")
    text = admin.text()
    assert cluster.cluster_id in text, text
    assert name in text, text
    assert admin.finds(f"#q-running td[title='{task_id}']")
    assert admin.finds(f"#q-inflight td[title='{task_id}']")
    assert fetch(task_id, wait=30_000) is not None  # the shared cluster is idle again
