"""Real servers for the end-to-end, crash and concurrency tests: ``python server.py``
subprocesses (gunicorn) on a real SQLite file, driven over real HTTP."""
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import requests

from conftest import GRID_BOXES, USERS, grid_geojson

ROOT = pathlib.Path(__file__).resolve().parent.parent
PASSWORD = "e2e password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(*args, stdin=None, db, check=True):
    result = subprocess.run([sys.executable, "-m", "gridcollect", *args, "--db", str(db)],
                            input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result.stdout if check else result


def make_city(folder) -> pathlib.Path:
    """A database with the test grids and users (password ``PASSWORD``), made by the CLI."""
    db = pathlib.Path(folder) / "city.db"
    cli("init-db", db=db)
    (db.parent / "grids.geojson").write_text(json.dumps({
        "type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"code": code, "name": f"网格{code[-3:]}"},
             "geometry": json.loads(grid_geojson(code))} for code in GRID_BOXES]}),
        encoding="utf-8")
    assert "3 added" in cli("grids", "import", str(db.parent / "grids.geojson"), db=db)
    for username, (role, scope) in USERS.items():
        cli("users", "add", username, "--role", role, *[f"--scope={p}" for p in scope],
            "--password-stdin", stdin=PASSWORD + "\n", db=db)
    return db


class Server:
    """``python server.py`` on a free port; ``stop()`` is SIGTERM, ``kill()`` SIGKILL
    to the whole process group (the gunicorn master and its workers)."""

    def __init__(self, db, log, workers=2, port=None):
        self.db, self.port = db, port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/api/v1"
        self.log_path = pathlib.Path(log)
        self.log = open(log, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "server.py", "--port", str(self.port), "--db", str(db),
             "--workers", str(workers)], cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{self.url}/openapi.json", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start; see {log}")
            time.sleep(0.1)

    def _signal(self, sig):
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)
        self.log.close()

    def stop(self):
        self._signal(signal.SIGTERM)

    def kill(self):
        self._signal(signal.SIGKILL)


def log_problems(*paths) -> list:
    """Lines of server logs that show a crash or a 5xx answer."""
    bad = []
    for path in paths:
        for line in pathlib.Path(path).read_text(errors="replace").splitlines():
            if "Traceback" in line or '" 5' in line or "database is locked" in line:
                bad.append(line)
    return bad


class Phone:
    """A requests session logged in as one user, or with a token it already has (tokens
    are in the database: they outlive a server)."""

    def __init__(self, url, username=None, password=PASSWORD, token=None):
        self.url, self.session = url, requests.Session()
        if token is None:
            response = self.session.post(f"{url}/auth/token",
                                         json={"username": username, "password": password})
            assert response.status_code == 200, response.text
            token = response.json()["token"]
        self.token = token
        self.session.headers["Authorization"] = f"Bearer {token}"

    def get(self, path, **kw):
        return self.session.get(self.url + path, timeout=kw.pop("timeout", 30), **kw)

    def post(self, path, **kw):
        return self.session.post(self.url + path, timeout=kw.pop("timeout", 30), **kw)
