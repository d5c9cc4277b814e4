"""Behaviour probes for our backports, shared by the backport and pipeline tests.

Each probe is a script printing one JSON object; :func:`probe` runs it with
a given Python, optionally with an unpacked source tree first on the path.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from fromsource.build.deps import uv_binary
from fromsource.config import Settings, upstream_url


@dataclass(frozen=True)
class Case:
    """One backport: the release, the dependencies of its era, and a behaviour probe."""

    project: str
    version: str
    deps: tuple[str, ...]
    script: str


FLASK_PROBE = """
import json
from flask import Flask, session
app = Flask("probe")
app.secret_key = "not-a-secret"

@app.route("/login")
def login():
    session["user"] = "alice"
    session.permanent = True
    return "ok"

@app.route("/ignored")
def ignored():
    return ""

client = app.test_client()
client.get("/login")
response = client.get("/ignored")
print(json.dumps({"set_cookie": "Set-Cookie" in response.headers,
                  "vary": response.headers.get("Vary")}))
"""

WERKZEUG_PROBE = """
import json
from werkzeug.http import parse_cookie
cookies = parse_cookie("==__Host-eq=bad;__Host-eq=good;")
print(json.dumps({"values": cookies.getlist("__Host-eq"), "get": cookies.get("__Host-eq")}))
"""

REQUESTS_PROBE = """
import json
import requests
session = requests.Session()
session.trust_env = False
proxies = {"http": "http://user:pass@127.0.0.1:9", "https": "http://user:pass@127.0.0.1:9"}
result = {}
for url in ("http://example.invalid/", "https://example.invalid/"):
    prepared = session.prepare_request(requests.Request("GET", url))
    session.rebuild_proxies(prepared, proxies)
    result[url.split(":")[0]] = "Proxy-Authorization" in prepared.headers
print(json.dumps(result))
"""

URLLIB3_PROBE = """
import json, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import urllib3

class Echo(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(dict(self.headers)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass

echo = ThreadingHTTPServer(("127.0.0.1", 0), Echo)

class Redirect(BaseHTTPRequestHandler):
    def do_GET(self):
        # another port is another origin for urllib3's same-host check
        self.send_response(302)
        self.send_header("Location", f"http://127.0.0.1:{echo.server_port}/echo")
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass

redirect = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
for server in (echo, redirect):
    threading.Thread(target=server.serve_forever, daemon=True).start()
pool = urllib3.PoolManager()
response = pool.request("GET", f"http://127.0.0.1:{redirect.server_port}/redirect",
                        headers={"Cookie": "session=secret", "Authorization": "Basic eDp5"})
seen = {k.lower(): v for k, v in json.loads(response.data).items()}
print(json.dumps({"cookie": "cookie" in seen, "authorization": "authorization" in seen}))
for server in (echo, redirect):
    server.shutdown()
"""

JINJA2_PROBE = """
import json
from jinja2 import Environment
template = Environment(autoescape=True).from_string("<p{{ attrs|xmlattr }}>")
result = {}
for name, key in (("space", "onclick=alert(1) x"), ("slash", "x/onclick=alert(1)"),
                  ("gt", "x><script>alert(1)</script")):
    try:
        result[name] = template.render(attrs={key: "v"})
    except ValueError as exc:
        result[name] = "ValueError: " + str(exc)
print(json.dumps(result))
"""

CASES = {
    "flask": Case("flask", "2.0.0", (
        # Flask 2.0.0's test client needs the Werkzeug of its time.
        "Werkzeug==2.0.3", "Jinja2==3.0.3", "itsdangerous==2.0.1", "MarkupSafe==2.0.1",
        "click==8.0.4"), FLASK_PROBE),
    "werkzeug": Case("werkzeug", "2.2.2", ("MarkupSafe==2.1.1",), WERKZEUG_PROBE),
    "requests": Case("requests", "2.30.0", (
        "urllib3==1.26.16", "idna==3.4", "charset-normalizer==3.1.0", "certifi==2023.5.7"),
        REQUESTS_PROBE),
    "urllib3": Case("urllib3", "1.26.16", (), URLLIB3_PROBE),
    "jinja2": Case("jinja2", "3.1.2", ("MarkupSafe==2.1.1",), JINJA2_PROBE),
}


def make_venv(base: Path, deps: tuple[str, ...]) -> Path:
    """A fresh venv under *base* with *deps* from the configured upstream; its python."""
    uv = uv_binary()
    venv = base / "venv"
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    install(python, *deps)
    return python


def install(python: Path, *requirements: str, no_deps: bool = False) -> None:
    """Install *requirements* (names or wheel paths) into the venv of *python* with uv."""
    if not requirements:
        return
    subprocess.run(
        [uv_binary(), "pip", "install", "--quiet", "--python", str(python),
         "--index-url", upstream_url(Settings()), *(["--no-deps"] if no_deps else []),
         *requirements],
        check=True, timeout=600,
    )


def probe(python: Path, tree: Path | None, script: str) -> dict[str, object]:
    """Run *script* (with the library from *tree* first on the path, if given); its JSON."""
    prefix = ""
    if tree is not None:
        src = tree / "src" if (tree / "src").is_dir() else tree
        prefix = f"import sys; sys.path.insert(0, {str(src)!r})\n"
    done = subprocess.run(
        [str(python), "-I", "-c", prefix + script],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result
