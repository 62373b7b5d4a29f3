"""Light commands (``hash``, ``verify``): their arguments read without argparse.

Loading argparse, with the ``re``, ``gettext``, ``locale``, ``enum``, ``functools`` and
``collections`` it imports, is a large part of what ``mlsecops hash`` spends before it
hashes. A light command declares its arguments once, as a :class:`LightCommand`:
:meth:`LightCommand.register` adds its argparse subparser from that declaration (help, usage
and every error stay argparse's), and :meth:`LightCommand.read` reads the arguments directly
when they use only the plain forms, returning ``None`` for anything else so that argparse
parses them:

- ``-v`` / ``--verbose`` / ``--debug`` before the command name (see :func:`read_argv`);
- positional values, and ``--option VALUE`` or ``--option=VALUE`` of the command's own
  options spelt out in full, each given once, no value empty or starting with ``-``;
- every positional and every required option present, every type conversion succeeding.

What it returns has the attributes argparse's namespace would hold (a test compares them).
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs every command's start-up
if TYPE_CHECKING:
    from argparse import Namespace as _Namespace  # what the handlers are typed to take
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any
else:
    _Namespace = object  # at run time a plain object: argparse stays unloaded

GLOBAL_FLAGS = {"-v": "verbose", "--verbose": "verbose", "--debug": "debug"}


class Arguments(_Namespace):
    """The parsed arguments, as attributes (what ``argparse.Namespace`` holds)."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)

    def __repr__(self) -> str:
        return f"Arguments({', '.join(f'{k}={v!r}' for k, v in sorted(vars(self).items()))})"


class Argument:
    """One argument: a positional (``"path"``) or an option taking one value (``"--out"``)."""

    __slots__ = ("name", "metavar", "help", "type", "required")

    def __init__(
        self,
        name: str,
        *,
        help: str,  # noqa: A002 - argparse's name for it
        metavar: str | None = None,
        type: Callable[[str], Any] | None = None,  # noqa: A002
        required: bool = False,
    ) -> None:
        self.name, self.metavar, self.help = name, metavar, help
        self.type, self.required = type, required

    @property
    def positional(self) -> bool:
        return not self.name.startswith("-")

    @property
    def dest(self) -> str:
        return self.name.lstrip("-").replace("-", "_")


class LightCommand:
    """A subcommand whose arguments are positionals and ``--option VALUE`` options only."""

    def __init__(
        self,
        name: str,
        handler: Callable[[Any], int],
        *,
        help: str,  # noqa: A002
        description: str,
        arguments: Sequence[Argument],
    ) -> None:
        self.name, self.handler = name, handler
        self.help, self.description = help, description
        self.arguments = tuple(arguments)

    def register(self, subparsers: Any) -> Any:
        """Add this command's argparse subparser (the one that prints help and errors)."""
        parser = subparsers.add_parser(self.name, help=self.help, description=self.description)
        for arg in self.arguments:
            extra: dict[str, Any] = {} if arg.type is None else {"type": arg.type}
            if not arg.positional:
                extra["required"] = arg.required
            parser.add_argument(arg.name, metavar=arg.metavar, help=arg.help, **extra)
        parser.set_defaults(handler=self.handler, light=True)
        return parser

    def read(self, tokens: Sequence[str]) -> dict[str, Any] | None:
        """The arguments after the command name, or ``None`` unless all are plain forms."""
        positionals = [a for a in self.arguments if a.positional]
        options = {a.name: a for a in self.arguments if not a.positional}
        given: dict[str, str] = {}
        rest = iter(tokens)
        for token in rest:
            if token and token[0] != "-":
                if not positionals:
                    return None
                given[positionals.pop(0).dest] = token
                continue
            name, equals, value = token.partition("=")
            option = options.get(name)
            if option is None or option.dest in given:
                return None
            value = value if equals else next(rest, "")
            if not value or value[0] == "-":
                return None
            given[option.dest] = value
        if positionals or any(o.required and o.dest not in given for o in options.values()):
            return None
        values: dict[str, Any] = {arg.dest: given.get(arg.dest) for arg in self.arguments}
        for arg in self.arguments:
            if arg.dest in given and arg.type is not None:
                try:
                    values[arg.dest] = arg.type(given[arg.dest])
                except Exception:  # argparse reports it
                    return None
        return {**values, "handler": self.handler, "light": True}


def read_argv(argv: Sequence[str], commands: Mapping[str, LightCommand]) -> Arguments | None:
    """``mlsecops`` arguments naming one of ``commands`` in plain forms, else ``None``."""
    flags = {"verbose": False, "debug": False}
    index = 0
    while index < len(argv) and argv[index] in GLOBAL_FLAGS:
        flags[GLOBAL_FLAGS[argv[index]]] = True
        index += 1
    command = commands.get(argv[index]) if index < len(argv) else None
    values = command.read(argv[index + 1 :]) if command is not None else None
    if values is None:
        return None
    return Arguments(**flags, command=argv[index], **values)
