#!/usr/bin/python3
"""Browser tests of Gust's web console in a real headless Chromium, driven by Selenium.

Started by Tests/EndToEndTests/ConsoleTests.swift against a real gustd with pushed sample apps;
it passes everything on the command line and reads one line per case back:
`PASS name` or `FAIL name: why`, then `N passed, M failed`. Exit status 0 only if all passed.

Arguments (all required): --url, --admin-token, --scoped-token, --app, --other-app, --hostile-app,
--record-type, --record-id, --screenshots DIR. With --session-out FILE the admin's session cookie is
written there at the end; a later run with --session-in FILE (after gustd restarted) checks only
that the session still signs the browser in.
"""
import argparse
import http.client
import json
import os
import sys
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

# Generous bounds: a deploy starts an instance, and the machine may be busy with other tests.
DEPLOY_WAIT = 120
STEP_WAIT = 30
HOSTILE = ["<script>alert(1)</script>", "</script><img src=x onerror=alert(1)>"]


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,1000"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


class Console:
    def __init__(self, args):
        self.args = args
        self.url = args.url.rstrip("/")
        self.driver = browser()
        self.wait = WebDriverWait(self.driver, STEP_WAIT)

    def shot(self, name):
        os.makedirs(self.args.screenshots, exist_ok=True)
        self.driver.save_screenshot(os.path.join(self.args.screenshots, f"{name}.png"))

    def open(self, path):
        self.driver.get(self.url + path)

    def sign_in(self, token):
        self.driver.delete_all_cookies()
        self.open("/login")
        self.driver.find_element(By.ID, "token").send_keys(token)
        self.driver.find_element(By.ID, "sign-in").click()
        self.wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "header nav")))

    def text(self):
        return self.driver.find_element(By.TAG_NAME, "body").text

    def no_alert(self):
        try:
            alert = self.driver.switch_to.alert
            text = alert.text
            alert.dismiss()
            return f"an alert opened: {text!r}"
        except NoAlertPresentException:
            return None

    def injected_nodes(self):
        """Elements a payload would have made: any img with src=x, any script not from /static/."""
        images = self.driver.find_elements(By.CSS_SELECTOR, "img")
        scripts = [s.get_attribute("src") for s in self.driver.find_elements(By.TAG_NAME, "script")]
        bad = [s for s in scripts if not (s or "").endswith("/static/console.js")]
        return len(images), bad


def call_op(url, app, op, args):
    request = urllib.request.Request(f"{url}/{op}", data=json.dumps(args).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read().decode()


def case_sign_in(c):
    c.open("/")
    assert "/login" in c.driver.current_url, f"not sent to sign in: {c.driver.current_url}"
    c.shot("login")
    c.sign_in(c.args.admin_token)
    assert c.driver.current_url.rstrip("/") == c.url, c.driver.current_url
    cookie = c.driver.get_cookie("gust_session")
    assert cookie and cookie.get("httpOnly") and cookie.get("sameSite") == "Strict", f"session cookie {cookie}"


def case_wrong_token_refused(c):
    c.driver.delete_all_cookies()
    c.open("/login")
    c.driver.find_element(By.ID, "token").send_keys("gustc_not-a-token")
    c.driver.find_element(By.ID, "sign-in").click()
    c.wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "p.error")))
    assert "not a valid console token" in c.text()
    c.sign_in(c.args.admin_token)


def case_overview_lists_apps(c):
    c.open("/")
    rows = c.driver.find_elements(By.CSS_SELECTOR, "tr.app-row")
    names = {row.get_attribute("data-app") for row in rows}
    for app in [c.args.app, c.args.other_app, c.args.hostile_app]:
        assert app in names, f"{app} not in {names}"
    row = c.driver.find_element(By.CSS_SELECTOR, f'tr.app-row[data-app="{c.args.app}"]')
    assert "v" in row.text and row.find_elements(By.CSS_SELECTOR, "svg.spark polyline"), row.text
    c.shot("overview")
    # A phone-sized screen: the table scrolls inside its box, the page itself does not.
    c.driver.set_window_size(390, 844)
    c.open(f"/apps/{c.args.app}")
    width = c.driver.execute_script("return document.documentElement.scrollWidth")
    c.shot("app-phone")
    c.driver.set_window_size(1280, 1000)
    assert width <= 400, f"the app page is {width}px wide on a 390px screen"


def app_version(c):
    return call_op(c.args.app_url, c.args.app, "version", {})


def case_rollback(c):
    before = app_version(c)
    assert "two" in before, f"the app answered {before!r} before the rollback"
    c.open(f"/apps/{c.args.app}")
    c.shot("app")
    c.driver.find_element(By.ID, "rollback-1").click()
    WebDriverWait(c.driver, DEPLOY_WAIT).until(EC.presence_of_element_located((By.ID, "flash")))
    assert "Rollback to v1" in c.driver.find_element(By.ID, "flash").text
    after = app_version(c)
    assert "one" in after, f"the app answered {after!r} after rolling back to v1"


def case_release_page(c):
    c.open(f"/apps/{c.args.app}/releases/2")
    log = c.driver.find_element(By.ID, "build-log").text
    assert "Python" in log or "python" in log, f"build log: {log[:300]!r}"
    c.shot("release")


def case_config_edit(c):
    c.open(f"/apps/{c.args.app}")
    versions = [int(r.get_attribute("data-version")) for r in c.driver.find_elements(By.CSS_SELECTOR, "#releases tr[data-version]")]
    c.driver.find_element(By.ID, "config-name").send_keys("GREETING")
    c.driver.find_element(By.ID, "config-value").send_keys("bonjour")
    c.driver.find_element(By.ID, "config-set").click()
    WebDriverWait(c.driver, DEPLOY_WAIT).until(EC.presence_of_element_located((By.ID, "flash")))
    now = [int(r.get_attribute("data-version")) for r in c.driver.find_elements(By.CSS_SELECTOR, "#releases tr[data-version]")]
    assert max(now) == max(versions) + 1, f"releases {versions} -> {now}"
    assert "bonjour" in app_version(c), "the new release does not see GREETING"
    assert "Set GREETING" in c.text()


def case_live_log_from_op_form(c):
    c.open(f"/apps/{c.args.app}/logs")
    WebDriverWait(c.driver, STEP_WAIT).until(
        lambda d: d.find_element(By.ID, "stream-state").text.startswith("Streaming"))
    marker = f"console-marker-{int(time.time())}"
    url_before = c.driver.current_url
    c.driver.find_element(By.ID, "op-name").clear()
    c.driver.find_element(By.ID, "op-name").send_keys("shout")
    args = c.driver.find_element(By.ID, "op-args")
    args.clear()
    args.send_keys(json.dumps({"text": marker}))
    c.driver.find_element(By.ID, "op-call").click()
    WebDriverWait(c.driver, STEP_WAIT).until(lambda d: marker in d.find_element(By.ID, "live-log").text)
    WebDriverWait(c.driver, STEP_WAIT).until(lambda d: "Status 200" in d.find_element(By.ID, "op-answer").text)
    assert c.driver.current_url == url_before, "the page was reloaded"
    c.shot("logs")


def case_record_hook(c):
    base = f"/apps/{c.args.app}/records/{c.args.record_type}/{c.args.record_id}"
    c.open(f"/apps/{c.args.app}/records?type={c.args.record_type}")
    assert c.args.record_id in c.text()
    c.shot("records")
    c.open(base)
    fields = c.driver.find_element(By.ID, "record-fields")
    fields.clear()
    fields.send_keys(json.dumps({"name": "Rex"}))
    c.driver.find_element(By.ID, "record-save").click()
    error = c.wait.until(EC.presence_of_element_located((By.ID, "record-error")))
    assert "Rex is not a cat name" in error.text, error.text
    c.shot("record-refused")
    c.open(base)
    fields = c.driver.find_element(By.ID, "record-fields")
    fields.clear()
    fields.send_keys(json.dumps({"name": "Felix"}))
    c.driver.find_element(By.ID, "record-save").click()
    c.wait.until(EC.presence_of_element_located((By.ID, "flash")))
    view = c.driver.find_element(By.ID, "record-view").text
    assert "Felix" in view and "checked" in view, f"the before-hook did not run: {view}"


def case_scoped_token(c):
    c.sign_in(c.args.scoped_token)
    c.open("/")
    names = {row.get_attribute("data-app") for row in c.driver.find_elements(By.CSS_SELECTOR, "tr.app-row")}
    assert names == {c.args.app}, f"a scoped token sees {names}"
    for path in [f"/apps/{c.args.other_app}", f"/apps/{c.args.other_app}/logs", f"/apps/{c.args.other_app}/records?type=cat"]:
        c.open(path)
        assert "Not found" in c.text(), f"{path} shows: {c.text()[:200]}"
        assert c.args.other_app not in c.driver.find_element(By.TAG_NAME, "main").text.replace("Not found", "")
    c.shot("scoped-not-found")
    c.open("/activity")
    assert c.args.other_app not in c.text()
    c.sign_in(c.args.admin_token)


def case_post_without_csrf_refused(c):
    session = c.driver.get_cookie("gust_session")["value"]
    data = urllib.parse.urlencode({"version": "1"}).encode()
    request = urllib.request.Request(f"{c.url}/apps/{c.args.app}/rollback", data=data, method="POST",
                                     headers={"Cookie": f"gust_session={session}"})
    try:
        urllib.request.urlopen(request, timeout=30)
        raise AssertionError("a rollback without a CSRF token was accepted")
    except urllib.error.HTTPError as error:
        assert error.code == 403, error.code
    # And with a wrong one.
    data = urllib.parse.urlencode({"version": "1", "csrf": "forged"}).encode()
    request = urllib.request.Request(f"{c.url}/apps/{c.args.app}/rollback", data=data, method="POST",
                                     headers={"Cookie": f"gust_session={session}"})
    try:
        urllib.request.urlopen(request, timeout=30)
        raise AssertionError("a rollback with a forged CSRF token was accepted")
    except urllib.error.HTTPError as error:
        assert error.code == 403, error.code


def case_security_headers(c):
    with urllib.request.urlopen(f"{c.url}/login", timeout=30) as response:
        headers = response.headers
    assert "script-src 'self'" in headers["Content-Security-Policy"], headers
    assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff", headers


def case_hostile_app(c):
    app = c.args.hostile_app
    pages = [f"/apps/{app}", f"/apps/{app}/logs", f"/apps/{app}/records?type=cat", "/", "/activity"]
    pages.append(f"/apps/{app}/records/cat/{c.args.hostile_record_id}")
    for index, path in enumerate(pages):
        c.open(path)
        if path.endswith("/logs"):
            WebDriverWait(c.driver, STEP_WAIT).until(
                lambda d: d.find_element(By.ID, "stream-state").text.startswith("Streaming"))
            # A new hostile line while the page streams it.
            c.driver.find_element(By.ID, "op-name").clear()
            c.driver.find_element(By.ID, "op-name").send_keys("shout")
            c.driver.find_element(By.ID, "op-call").click()
            WebDriverWait(c.driver, STEP_WAIT).until(
                lambda d: d.find_element(By.ID, "live-log").text.count("onerror=alert(1)") >= 2)
            c.shot("hostile-logs")
        time.sleep(0.5)
        alert = c.no_alert()
        assert alert is None, f"{path}: {alert}"
        images, scripts = c.injected_nodes()
        assert images == 0, f"{path}: {images} img element(s) were injected"
        assert not scripts, f"{path}: script elements {scripts}"
        body = c.text()
        if path.startswith(f"/apps/{app}"):
            assert any(h in body for h in HOSTILE), f"{path} does not show the hostile text as text"
        if index == 0:
            c.shot("hostile-app")
        if path == "/activity":
            assert "rollback" in body and "console" in body, f"the activity page: {body[:300]}"
            c.shot("activity")
    logs = c.driver.get_log("browser")
    csp = [entry for entry in logs if "Content Security Policy" in entry.get("message", "")]
    assert not csp, f"the page tried something CSP blocked: {csp}"


def form_csrf(c):
    """The session's CSRF token, as every form of the page carries it."""
    return c.driver.find_element(By.CSS_SELECTOR, 'input[name="csrf"]').get_attribute("value")


def post(c, path, fields):
    """A form POST with the browser's session cookie; returns the HTTP status (redirects not followed)."""
    session = c.driver.get_cookie("gust_session")["value"]
    request = urllib.request.Request(f"{c.url}{path}", data=urllib.parse.urlencode(fields).encode(), method="POST",
                                     headers={"Cookie": f"gust_session={session}"})

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def fill(c, element_id, value):
    field = c.driver.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(value)


def assert_no_injection(c, where):
    alert = c.no_alert()
    assert alert is None, f"{where}: {alert}"
    images, scripts = c.injected_nodes()
    assert images == 0 and not scripts, f"{where}: {images} img, scripts {scripts}"


def case_scale_takes_effect(c):
    """Min 2 from the app page: gustd reconciles and a second instance starts, as after `gust scale`."""
    c.open(f"/apps/{c.args.app}")
    fill(c, "scale-min", "2")
    fill(c, "scale-max", "3")
    c.driver.find_element(By.ID, "scale-save").click()
    flash = c.wait.until(EC.presence_of_element_located((By.ID, "flash")))
    assert "min 2, max 3" in flash.text, flash.text
    deadline = time.time() + DEPLOY_WAIT
    while time.time() < deadline:
        c.open(f"/apps/{c.args.app}")
        if c.driver.find_element(By.ID, "live-instances").text == "2":
            break
        time.sleep(1)
    assert c.driver.find_element(By.ID, "live-instances").text == "2", c.driver.find_element(By.ID, "live-state").text
    # A refusal is the CLI's message, and nothing changes.
    fill(c, "scale-max", "99")
    c.driver.find_element(By.ID, "scale-save").click()
    error = c.wait.until(EC.presence_of_element_located((By.ID, "flash-error")))
    assert "--max must be between 1 and 32" in error.text, error.text
    assert "Instances 2–3" in c.text()
    fill(c, "limits-memory", "300M")
    c.driver.find_element(By.ID, "limits-save").click()
    flash = c.wait.until(EC.presence_of_element_located((By.ID, "flash")))
    assert "memory 300M" in flash.text, flash.text
    c.shot("app-scaled")


def records_url(c):
    return c.args.app_url.replace("/_/functions", f"/_/records/{c.args.record_type}")


def records_status(c, secret):
    request = urllib.request.Request(records_url(c), headers={"X-Auth-Token": secret})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def case_token_create_and_revoke(c):
    c.open(f"/apps/{c.args.app}")
    fill(c, "token-description", HOSTILE[1])
    fill(c, "token-expires", "1d")
    c.driver.find_element(By.ID, "token-create").click()
    secret = c.wait.until(EC.presence_of_element_located((By.ID, "token-secret"))).text.strip()
    assert secret.startswith("gust_"), secret
    c.shot("token-created")
    assert records_status(c, secret) == 200, "the new token does not reach the records API"
    c.driver.find_element(By.ID, "token-back").click()
    c.wait.until(EC.presence_of_element_located((By.ID, "token-list")))
    assert_no_injection(c, "the app page with a hostile token description")
    assert HOSTILE[1] in c.text(), "the description is not shown as text"
    assert secret not in c.driver.page_source, "the secret is shown again"
    row = [r for r in c.driver.find_elements(By.CSS_SELECTOR, "#token-list tr[data-token]") if HOSTILE[1] in r.text][-1]
    row.find_element(By.CSS_SELECTOR, "button.danger").click()
    flash = c.wait.until(EC.presence_of_element_located((By.ID, "flash")))
    assert "Revoked token" in flash.text, flash.text
    assert records_status(c, secret) == 401, "a revoked token still reaches the records API"


def case_charts_after_calls(c):
    for _ in range(5):
        app_version(c)
    c.open(f"/apps/{c.args.app}")
    for chart in ["latency", "instances", "builds"]:
        figure = c.driver.find_element(By.ID, f"chart-{chart}")
        title = figure.find_element(By.CSS_SELECTOR, "svg title").get_attribute("textContent")
        assert title, f"the {chart} chart has no title"
    path = c.driver.find_element(By.CSS_SELECTOR, "#chart-latency path.series.p50").get_attribute("d")
    assert path.startswith("M"), f"no latency drawn after calls: {path!r}"
    desc = c.driver.find_element(By.CSS_SELECTOR, "#chart-latency desc").get_attribute("textContent")
    assert "p99" in desc and "No calls" not in desc, desc
    bars = c.driver.find_elements(By.CSS_SELECTOR, "#chart-builds rect.bar")
    assert len(bars) >= 2, f"{len(bars)} build bars"
    c.shot("app-charts")
    c.driver.execute_script("document.getElementById('charts').scrollIntoView()")
    c.shot("charts")


def function_articles(c):
    """The app page's per-function chart cards, by function name (an attribute: read as text, never as HTML)."""
    return {a.get_attribute("data-function"): a
            for a in c.driver.find_elements(By.CSS_SELECTOR, "#function-charts article.function")}


def calls_in_window(article):
    """The calls the function's calls chart says it had, from its text description."""
    desc = article.find_element(By.CSS_SELECTOR, "figure.chart desc").get_attribute("textContent")
    return int(desc.split(" call(s)")[0].split()[-1])


def case_function_charts(c):
    # Two ops of cats, and an op of the hostile app whose name is a script tag.
    for _ in range(3):
        app_version(c)
    call_op(c.args.app_url, c.args.app, "shout", {"text": "charted"})
    evil_url = c.args.app_url.replace(f"/apps/{c.args.app}/", f"/apps/{c.args.hostile_app}/")
    try:
        call_op(evil_url, c.args.hostile_app, urllib.parse.quote(HOSTILE[0], safe=""), {})
    except urllib.error.URLError as error:  # the console's op form reaches it however the URL is parsed
        print(f"calling the hostile op by URL: {error}; calling it from the op form", file=sys.stderr)
        c.open(f"/apps/{c.args.hostile_app}/logs")
        c.driver.find_element(By.ID, "op-name").clear()
        c.driver.find_element(By.ID, "op-name").send_keys(HOSTILE[0])
        c.driver.find_element(By.ID, "op-call").click()
        WebDriverWait(c.driver, STEP_WAIT).until(lambda d: d.find_element(By.ID, "op-answer").text)
    c.open(f"/apps/{c.args.app}")
    articles = function_articles(c)
    for op, least in [("version", 3), ("shout", 1)]:
        assert op in articles, f"no chart for op {op}: {list(articles)}"
        article = articles[op]
        assert article.get_attribute("data-kind") == "op", article.get_attribute("data-kind")
        figures = article.find_elements(By.CSS_SELECTOR, "figure.chart")
        assert len(figures) == 2, f"{op}: {len(figures)} charts"
        for figure in figures:
            title = figure.find_element(By.CSS_SELECTOR, "svg title").get_attribute("textContent")
            assert title.endswith(f"op {op}"), f"{op}: chart title {title!r}"
        assert calls_in_window(article) >= least, f"{op}: {calls_in_window(article)} calls charted"
        p50 = article.find_element(By.CSS_SELECTOR, "path.series.p50").get_attribute("d")
        assert p50.startswith("M"), f"{op}: no latency drawn: {p50!r}"
    c.driver.execute_script("document.getElementById('function-charts').scrollIntoView()")
    c.shot("function-charts")
    # A phone-sized screen: the function charts fit it.
    c.driver.set_window_size(390, 844)
    c.open(f"/apps/{c.args.app}")
    width = c.driver.execute_script("return document.documentElement.scrollWidth")
    c.driver.execute_script("document.getElementById('function-charts').scrollIntoView()")
    c.shot("function-charts-phone")
    c.driver.set_window_size(1280, 1000)
    assert width <= 400, f"the app page with function charts is {width}px wide on a 390px screen"
    # The hostile op's chart names it as text and runs nothing.
    c.open(f"/apps/{c.args.hostile_app}")
    articles = function_articles(c)
    assert HOSTILE[0] in articles, f"no chart for the hostile op: {list(articles)}"
    assert calls_in_window(articles[HOSTILE[0]]) >= 1
    assert HOSTILE[0] in c.driver.find_element(By.ID, "function-charts").text, "the hostile name is not shown as text"
    time.sleep(0.5)
    assert_no_injection(c, "the hostile app's function charts")
    c.shot("hostile-function-charts")


def status_by_host(c, host):
    """The status of an op call to gustd's public port under another Host: is the domain routed?"""
    public = urllib.parse.urlsplit(c.args.app_url)
    connection = http.client.HTTPConnection(public.hostname, public.port, timeout=30)
    try:
        connection.request("POST", "/_/functions/version", body=b"{}", headers={"Host": host, "Content-Type": "application/json"})
        return connection.getresponse().status
    finally:
        connection.close()


def case_domains_add_and_remove(c):
    c.open("/domains")
    Select(c.driver.find_element(By.ID, "domain-app")).select_by_value(c.args.app)
    fill(c, "domain-name", "www.cats-console.example")
    c.driver.find_element(By.ID, "domain-add").click()
    flash = c.wait.until(EC.presence_of_element_located((By.ID, "flash")))
    assert "Added www.cats-console.example" in flash.text, flash.text
    row = c.driver.find_element(By.CSS_SELECTOR, 'tr[data-domain="www.cats-console.example"]')
    assert c.args.app in row.text and "pending" in row.text, row.text
    assert status_by_host(c, "www.cats-console.example") == 200, "gustd does not route the new domain to the app"
    c.shot("domains")
    c.driver.set_window_size(390, 844)
    c.open("/domains")
    width = c.driver.execute_script("return document.documentElement.scrollWidth")
    c.shot("domains-phone")
    c.driver.set_window_size(1280, 1000)
    assert width <= 400, f"the domains page is {width}px wide on a 390px screen"
    # A hostile name is refused in words, as text.
    fill(c, "domain-name", HOSTILE[0])
    c.driver.find_element(By.ID, "domain-add").click()
    c.wait.until(EC.presence_of_element_located((By.ID, "flash-error")))
    assert_no_injection(c, "the domains page after a hostile name")
    c.driver.find_element(By.ID, "remove-www.cats-console.example").click()
    flash = c.wait.until(EC.presence_of_element_located((By.ID, "flash")))
    assert "Removed www.cats-console.example" in flash.text, flash.text
    assert not c.driver.find_elements(By.CSS_SELECTOR, 'tr[data-domain="www.cats-console.example"]')
    assert status_by_host(c, "www.cats-console.example") != 200, "gustd still routes a removed domain"


def case_new_posts_need_csrf(c):
    app = c.args.app
    forms = [(f"/apps/{app}/scale", {"max": "4"}), (f"/apps/{app}/limits", {"memory": "64M"}),
             (f"/apps/{app}/tokens", {"description": "x"}), (f"/apps/{app}/tokens/1/revoke", {}),
             ("/domains", {"app": app, "domain": "csrf.example"}), ("/domains/remove", {"app": app, "domain": "csrf.example"})]
    for path, fields in forms:
        for csrf in [None, "forged"]:
            sent = dict(fields, **({"csrf": csrf} if csrf else {}))
            status = post(c, path, sent)
            assert status == 403, f"{path} with csrf={csrf}: {status}"


def case_scoped_token_cannot_steer_another_app(c):
    c.sign_in(c.args.scoped_token)
    c.open(f"/apps/{c.args.app}")
    csrf = form_csrf(c)
    other = c.args.other_app
    for path, fields in [(f"/apps/{other}/scale", {"min": "0"}), (f"/apps/{other}/limits", {"memory": "64M"}),
                         (f"/apps/{other}/tokens", {"description": "x"}), ("/domains", {"app": other, "domain": "dogs.example"})]:
        status = post(c, path, dict(fields, csrf=csrf))
        assert status == 404, f"a token scoped to {c.args.app} got {status} from {path}"
    c.open("/domains")
    options = [o.get_attribute("value") for o in c.driver.find_elements(By.CSS_SELECTOR, "#domain-app option")]
    assert options == [c.args.app], options
    c.sign_in(c.args.admin_token)


def case_session_after_restart(c):
    """Run alone, after gustd restarted: the session saved before still signs the browser in."""
    c.open("/login")
    with open(c.args.session_in) as file:
        c.driver.add_cookie({"name": "gust_session", "value": file.read().strip(), "path": "/"})
    c.open("/")
    assert "/login" not in c.driver.current_url, "gustd's restart signed the browser out"
    assert c.driver.find_elements(By.CSS_SELECTOR, "tr.app-row"), c.text()[:200]
    c.shot("after-restart")


CASES = [
    case_security_headers, case_sign_in, case_wrong_token_refused, case_overview_lists_apps, case_release_page,
    case_rollback, case_config_edit, case_live_log_from_op_form, case_record_hook, case_post_without_csrf_refused,
    case_hostile_app, case_scoped_token, case_scale_takes_effect, case_token_create_and_revoke, case_charts_after_calls,
    case_function_charts,
    case_domains_add_and_remove, case_new_posts_need_csrf, case_scoped_token_cannot_steer_another_app,
]


def main():
    parser = argparse.ArgumentParser()
    for name in ["url", "app-url", "admin-token", "scoped-token", "app", "other-app", "hostile-app", "record-type",
                 "record-id", "hostile-record-id", "screenshots"]:
        parser.add_argument("--" + name, required=True)
    parser.add_argument("--only", default="")
    parser.add_argument("--session-out", default="", help="after the cases, write the admin's session cookie here")
    parser.add_argument("--session-in", default="", help="run only the check that this session survived a restart")
    args = parser.parse_args()
    console = Console(args)
    passed = failed = 0
    try:
        for case in [case_session_after_restart] if args.session_in else CASES:
            name = case.__name__[len("case_"):]
            if args.only and name not in args.only.split(","):
                continue
            try:
                case(console)
                print(f"PASS {name}", flush=True)
                passed += 1
            except Exception as error:  # a case's failure is reported, and the others still run
                failed += 1
                print(f"FAIL {name}: {error!r}", flush=True)
                traceback.print_exc(file=sys.stdout)
                try:
                    console.shot(f"failed-{name}")
                except Exception:
                    pass
        if args.session_out:
            with open(args.session_out, "w") as file:
                file.write(console.driver.get_cookie("gust_session")["value"])
    finally:
        console.driver.quit()
    print(f"{passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
