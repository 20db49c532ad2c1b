"""The README's walk-throughs run as written (as datasette and sqlite-utils test their
docs): its shell blocks, taken from the README itself, against ``gridcollect serve
--demo`` in a new folder; only the port and the demo's passwords (printed once, so
different on every run) are put in. Each command must succeed."""
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import pytest
from live import free_port

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
BIN = pathlib.Path(sys.executable).parent
JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffdb004300") + b"\x08" * 64 + \
    bytes.fromhex("ffc0000b080001000101011100ffc4001f0000010501010101010100000000000000"
                  "000102030405060708090a0bffda0008010100003f00d2cf20ffd9")


def section(title: str) -> str:
    start = README.index(title)
    end = README.find("\n#", start + len(title))
    return README[start:end if end > 0 else None]


def shell_blocks(text: str) -> list:
    """The indented code blocks of a README section, as shell scripts."""
    blocks, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("    "):
            current.append(line[4:])
        elif current:
            blocks.append("\n".join(current))
            current = []
    return blocks


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("readme")
    port = free_port()
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    log = folder / "server.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(["gridcollect", "serve", "--demo", "--port", str(port),
                                    "--workers", "1"], cwd=folder, env=env, stdout=output,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while "gridcollect serving" not in log.read_text(errors="replace"):
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    passwords = dict(re.findall(r"^\s+(\w+)\s+\w+\s+\S+\s+(\S+)$", log.read_text(), re.M))
    (folder / "door.jpg").write_bytes(JPEG)
    yield folder, port, passwords, env
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


def run_block(block, demo):
    folder, port, passwords, env = demo
    readme_passwords = dict(re.findall(r"^\s+(\w+)\s+\w+\s+\S+\s+(\S+)$", section(
        "## The server"), re.M))
    for user, example in readme_passwords.items():
        block = block.replace(example, passwords[user])
    block = block.replace("8000", str(port))
    script = "set -e -o pipefail\n" + "\n".join(
        line for line in block.splitlines() if not line.startswith("$ "))
    result = subprocess.run(["bash", "-c", script], cwd=folder, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, (block, result.stdout, result.stderr)
    return result.stdout


def test_collect_and_confirm_with_curl(demo):
    blocks = shell_blocks(section("### Collect and confirm with curl"))
    assert len(blocks) == 3
    out = run_block("\n".join(blocks), demo)  # one shell: API, W and S carry over
    assert '"status":"accepted"' in out.replace(" ", "")
    assert '"error"' not in out, out  # every step succeeded: no refusal in any answer


def test_for_data_teams(demo):
    folder, port, passwords, env = demo
    cli, http = shell_blocks(section("## For data teams: releases and exports"))[:2]
    out = run_block(cli, demo)
    assert out.startswith("release 1: ")
    listed = [line for line in out.splitlines() if line.startswith("1\t")]
    assert listed and listed[0].endswith("\t2026 年第 4 季度 实有人口")  # `releases`
    assert (folder / "persons.csv").read_text(encoding="utf-8-sig").startswith("key,")
    assert (folder / "房屋.csv").read_text(encoding="utf-8-sig").startswith("主键,")
    assert (folder / "houses.xlsx").read_bytes()[:2] == b"PK"
    token = ("TOKEN=$(curl -s localhost:8000/api/v1/auth/token -H 'Content-Type: "
             "application/json' -d '{\"username\": \"analyst\", \"password\": \""
             + passwords["analyst"] + "\"}' | python3 -c 'import json,sys; "
             "print(json.load(sys.stdin)[\"token\"])')")
    out = run_block(http.replace("TOKEN=...   # POST /api/v1/auth/token as the analyst",
                                 token), demo)
    assert '"error"' not in out, out
    assert "演示街道第二社区12栋1单元302室" in out


def test_validate_example_prints_what_the_readme_shows(demo):
    folder, _, _, env = demo
    block = shell_blocks(section("Example (`examples/persons.csv`):"))[0]
    command, *shown = block.splitlines()
    result = subprocess.run(["bash", "-c", command.removeprefix("$ ")], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == shown[0] and lines[-1] == shown[-1]
