"""The CLI in a shell: --version, completion for bash/zsh/fish, help on every option."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys

import pytest

import atlasd
from atlasd.cli import build_parser
from tests.support.daemon import clean_env


def atlasd_cmd(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "atlasd", *args],
        env=clean_env(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def complete(line: str) -> list[str]:
    """What the completion hook offers for ``line`` (argcomplete's protocol: fd 8)."""
    script = f'"{sys.executable}" -m atlasd 8>&1 9>/dev/null'
    done = subprocess.run(
        ["bash", "-c", script],
        env=clean_env(
            {
                "_ARGCOMPLETE": "1",
                "_ARGCOMPLETE_IFS": "\n",
                "COMP_LINE": line,
                "COMP_POINT": str(len(line)),
            }
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_version_prints_the_package_version() -> None:
    """atlasd --version prints the installed version and exits 0."""
    done = atlasd_cmd("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"atlasd {atlasd.__version__}"


def test_completion_offers_subcommands_and_their_options() -> None:
    """Completing a subcommand's prefix offers it; after it, its own options."""
    assert complete("atlasd que") == ["query"]
    assert "--textfile" in complete("atlasd metrics --")
    assert "--json" in complete("atlasd doctor --")


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_code_is_printed_for_each_shell(shell: str) -> None:
    """atlasd completion SHELL prints code that registers completion for atlasd."""
    done = atlasd_cmd("completion", shell)
    assert done.returncode == 0, done.stderr
    assert "atlasd" in done.stdout
    assert "_ARGCOMPLETE" in done.stdout


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_the_bash_code_registers_a_completion_function() -> None:
    """Sourced in bash, the code makes `complete -p atlasd` name a function."""
    code = atlasd_cmd("completion", "bash").stdout
    done = subprocess.run(
        ["bash", "-c", f"{code}\ncomplete -p atlasd"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "-F" in done.stdout


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_every_option_of_every_command_has_help_without_markup() -> None:
    """Each option and argument explains itself, in plain text (no docstring markup)."""
    for name, sub in _subparsers().items():
        assert sub.description, name
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"atlasd {name} {action.option_strings or action.dest}"
        shown = sub.format_help()
        for markup in ("``", ":class:", ":mod:", ":func:", ":meth:"):
            assert markup not in shown, f"atlasd {name} --help shows {markup}"
