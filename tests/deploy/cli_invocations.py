"""The real command-line interfaces, and a parser that finds the ``autonat-search`` and
``ray`` invocations in compose files, scripts and docs (helpers of the deployment tests)."""

from __future__ import annotations

import importlib
import re
import shlex
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SCRIPT_NAME = "autonat-search"
# Commands the deployment files rely on although other work adds them: a missing one fails.
EXPECTED_COMMANDS = ("dashboard", "worker", "start-study", "status")
SHELL_SEPARATORS = {"&&", "||", ";", "|", "&", ")", "(", "then", "do", "fi", "done"}


@dataclass(frozen=True)
class Invocation:
    program: str  # "autonat-search" or "ray"
    subcommand: str
    options: tuple[str, ...]  # option names as written, without values
    source: str  # where it was found, for messages


def autonat_click_group() -> Any:
    """The Click group behind the ``autonat-search`` console script, found through
    pyproject.toml's entry point (so it follows the CLI wherever it moves)."""
    import typer

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    module_name = scripts[SCRIPT_NAME].split(":")[0]
    module = importlib.import_module(module_name)
    apps = [v for v in vars(module).values() if isinstance(v, typer.Typer)]
    assert len(apps) == 1, f"{module_name}: expected one Typer app, found {len(apps)}"
    return typer.main.get_command(apps[0])


def ray_click_group() -> Any:
    from ray.scripts.scripts import cli

    return cli


def option_names(command: Any) -> set[str]:
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


def _split(text: str) -> list[str]:
    try:
        return shlex.split(text, comments=False, posix=True)
    except ValueError:  # prose in a comment with an odd quote
        return text.split()


def invocations_in_tokens(tokens: list[str], source: str) -> Iterator[Invocation]:
    """Every ``autonat-search SUB ...`` and ``ray SUB ...`` in a token list (a command, or a
    shell script split into words)."""
    for index, token in enumerate(tokens):
        program = Path(token).name
        if program not in (SCRIPT_NAME, "ray"):
            continue
        rest = []
        for word in tokens[index + 1 :]:
            if word in SHELL_SEPARATORS or word.endswith((";", "&&")):
                break
            rest.append(word)
        # Global options (autonat-search --debug -v SUB) come before the subcommand.
        words = iter(rest)
        subcommand = next((w for w in words if not w.startswith("-")), "")
        if not re.fullmatch(r"[a-z][a-z0-9-]*", subcommand):
            continue  # prose such as "ray's", or a path
        options = tuple(w.split("=", 1)[0] for w in words if w.startswith("-") and w != "-")
        yield Invocation(program, subcommand, options, source)


COMMAND_WORDS = {SCRIPT_NAME, "ray", "docker-compose", "docker", "sbatch", "srun"}


def _code_fragments(text: str, *, markdown: bool) -> Iterator[tuple[int, str]]:
    """(line number, code) pairs: in Markdown, fenced blocks and `inline code`; in scripts and
    compose files, every line that is not a comment, and in comments, `inline code` and
    indented lines that start with a command (``#   docker-compose up -d worker``)."""
    joined = re.sub(r"\\\n\s*", " ", text)  # join backslash continuations
    fenced = False
    for number, line in enumerate(joined.splitlines(), start=1):
        stripped = line.strip()
        if markdown:
            if stripped.startswith("```"):
                fenced = not fenced
                continue
            if fenced:
                yield number, stripped
            else:
                yield from ((number, code) for code in re.findall(r"`([^`]+)`", line))
            continue
        if not stripped.startswith("#"):
            yield number, stripped
            continue
        comment = stripped.lstrip("#")
        spans = re.findall(r"`([^`]+)`", comment)
        if spans:
            yield from ((number, code) for code in spans)
        elif comment.startswith("  ") and Path(comment.split()[0]).name in COMMAND_WORDS:
            yield number, comment.strip()  # an indented example command


def invocations_in_text(text: str, source: str, *, markdown: bool = False) -> Iterator[Invocation]:
    """Invocations in a script, compose file or document; documented commands count too."""
    for number, code in _code_fragments(text, markdown=markdown):
        if SCRIPT_NAME in code or re.search(r"\bray\s", code):
            yield from invocations_in_tokens(_split(code), f"{source}:{number}")


def check_invocation(invocation: Invocation, autonat_cli: Any, ray_cli: Any) -> list[str]:
    """Problems with one invocation: an unknown subcommand or option."""
    group = autonat_cli if invocation.program == SCRIPT_NAME else ray_cli
    command = group.commands.get(invocation.subcommand)
    where = f"{invocation.source}: {invocation.program} {invocation.subcommand}"
    if command is None:
        return [f"{where}: no such command (known: {', '.join(sorted(group.commands))})"]
    known = option_names(command)
    return [f"{where}: no option {opt}" for opt in invocation.options if opt not in known]
