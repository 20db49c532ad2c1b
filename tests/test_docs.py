"""Documentation that cannot drift: every command, option, rule and code is documented."""
import pathlib
import re

import gridcollect
from gridcollect import CATALOGUE
from gridcollect.checks import COERCERS
from gridcollect.cli import main

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
STANDARDS_README = (ROOT / "field_standards" / "README.md").read_text(encoding="utf-8")


def test_every_cli_command_and_option_is_in_the_readme():
    for name, command in main.commands.items():
        assert f"gridcollect {name}" in README, name
        for param in command.params:
            for option in getattr(param, "opts", []):
                if option.startswith("--"):
                    assert option in README, (name, option)


def test_every_public_name_is_in_the_readme():
    for name in gridcollect.__all__:
        assert re.search(rf"`{name}[`(.]", README), name


def test_every_error_code_is_in_the_readme():
    for code in CATALOGUE:
        assert f"`{code}`" in README, code


def test_every_named_rule_and_coercer_is_in_the_standards_guide(standards):
    for name in list(standards.checks) + list(COERCERS):
        assert f"`{name}`" in STANDARDS_README, name
