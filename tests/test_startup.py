"""Start-up: `newsletter --help` imports click and the group alone, its table of commands says
what the commands themselves say, and a command imports no heavy library it does not use."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

from click.testing import CliRunner

from conftest import ROOT
from newsletter.cli import cli
from newsletter.cli.group import COMMANDS

# what the whole `newsletter --help` may import from the project
HELP_MODULES = {"newsletter", "newsletter.cli", "newsletter.cli.group"}
# imported only by the commands that use them
HEAVY = {
    "premailer",
    "PIL",
    "boto3",
    "botocore",
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "alembic",
    "jinja2",
    "mjml",
    "email_validator",
}


def imported_by(*args: str) -> set[str]:
    """The modules a fresh `python -m newsletter ARGS` has loaded when it exits."""
    probe = (
        "import atexit, json, sys\n"
        "atexit.register(lambda: sys.__stderr__.write('\\n@@' + json.dumps(sorted(sys.modules))))\n"
        "sys.argv = ['newsletter', *sys.argv[1:]]\n"
        "from newsletter.cli import main\n"
        "main()\n"
    )
    result = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, cwd=ROOT, timeout=60)
    return set(json.loads(result.stderr.rpartition("\n@@")[2]))


def test_help_imports_no_command_and_no_heavy_library():
    modules = imported_by("--help")
    assert {m for m in modules if m.startswith("newsletter")} <= HELP_MODULES
    assert not {m.partition(".")[0] for m in modules} & HEAVY


def test_no_command_module_imports_a_heavy_library():
    """What `newsletter COMMAND --help` pays for: the command modules import their libraries
    inside the commands that use them."""
    modules = sorted({module for module, _ in COMMANDS.values()})
    probe = "".join(f"import newsletter.cli.{module}\n" for module in modules) + "import sys\nprint(*sys.modules)\n"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60, check=True
    )
    assert not {m.partition(".")[0] for m in result.stdout.split()} & HEAVY


def test_the_table_of_commands_is_what_the_commands_say():
    registered_by: dict[str, str] = {}
    for module in sorted({module for module, _ in COMMANDS.values()}):
        before = set(cli.commands)
        importlib.import_module(f"newsletter.cli.{module}")
        registered_by.update(dict.fromkeys(set(cli.commands) - before, module))
    assert set(cli.commands) == set(COMMANDS), "every command is in COMMANDS, and nothing else"
    for name, (module, short_help) in COMMANDS.items():
        command = cli.commands[name]
        assert command.callback is not None and command.callback.__module__ == f"newsletter.cli.{module}", name
        assert command.get_short_help_str(limit=1000) == short_help, name
    assert registered_by.keys() <= COMMANDS.keys()


def help_output(*preloaded: str) -> str:
    """`newsletter --help` from a fresh process, with these command modules imported first."""
    code = "".join(f"import newsletter.cli.{module}\n" for module in preloaded)
    code += "import sys\nsys.argv = ['newsletter', '--help']\nfrom newsletter.cli import main\nmain()\n"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60, check=True
    )
    return result.stdout


def test_help_lists_every_command_as_click_would():
    lazy = help_output()
    assert lazy == help_output(*sorted({module for module, _ in COMMANDS.values()}))
    assert all(f"  {name}  " in lazy for name in COMMANDS)


def test_an_unknown_command_is_refused_with_the_nearest_one():
    result = CliRunner().invoke(cli, ["sned"])
    assert result.exit_code == 2
    assert "No such command 'sned'. Did you mean 'send'?" in result.output
    # among every command, imported or not, and in the commands' own groups
    assert "Did you mean 'subscribers'?" in CliRunner().invoke(cli, ["subscriber"]).output
    nested = CliRunner().invoke(cli, ["subscribers", "imprt"])
    assert nested.exit_code == 2 and "No such command 'imprt'. Did you mean 'import'?" in nested.output
    nothing_near = CliRunner().invoke(cli, ["xyzzy"])
    assert nothing_near.exit_code == 2 and "No such command 'xyzzy'." in nothing_near.output
    assert "Did you mean" not in nothing_near.output


def test_a_mistyped_command_imports_no_command_module():
    modules = imported_by("sned")
    assert {m for m in modules if m.startswith("newsletter")} <= HELP_MODULES | {"newsletter.errors"}
    assert not {m.partition(".")[0] for m in modules} & HEAVY
