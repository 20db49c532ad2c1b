"""Documentation that cannot drift: every command, option, rule and code is documented."""
import pathlib
import re

import gridcollect
from gridcollect import CATALOGUE
from gridcollect.errors import PROBLEMS
from gridcollect.checks import COERCERS
from gridcollect.cli import main

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
STANDARDS_README = (ROOT / "field_standards" / "README.md").read_text(encoding="utf-8")


def _commands(group, prefix="gridcollect"):
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _commands(command, f"{prefix} {name}")
        else:
            yield f"{prefix} {name}", command


def test_every_cli_command_and_option_is_in_the_readme():
    for name, command in _commands(main):
        assert name in README, name
        for param in command.params:
            for option in getattr(param, "opts", []) + getattr(param, "secondary_opts", []):
                if option.startswith("--"):
                    assert option in README, (name, option)


def test_every_api_endpoint_is_in_the_readme():
    from gridcollect.app import create_app
    app = create_app({"DATABASE": ":memory:"})

    def shape(path):  # parameters named either way: <id>, <int:submission_id>
        return re.sub(r"<[^>]*>", "<>", path)

    documented = {(m, shape(p)) for m, p in
                  re.findall(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`]*)`", README)}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or "openapi" in rule.rule \
                or "/docs" in rule.rule:
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (method, shape(rule.rule.removeprefix("/api/v1"))) in documented, \
                (method, rule.rule)


def test_every_api_problem_is_in_the_readme():
    for code in PROBLEMS:
        assert f"`{code}`" in README, code


def test_every_public_name_is_in_the_readme():
    for name in gridcollect.__all__:
        assert re.search(rf"`{name}[`(.]", README), name


def test_every_error_code_is_in_the_readme():
    for code in CATALOGUE:
        assert f"`{code}`" in README, code


def test_every_named_rule_and_coercer_is_in_the_standards_guide(standards):
    for name in list(standards.checks) + list(COERCERS):
        assert f"`{name}`" in STANDARDS_README, name
