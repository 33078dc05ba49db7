"""`--help` without type noise: no `<bool>` beside a flag, no `<str>` beside an option or an
argument, no braces around required arguments in the usage line.

Typer prints a type for every parameter (`--json <bool>`, `TARGET <str>`, `--concurrency <int
range> [x>=1]`). handrail's help says what a value is in words (`--db URL`, `--since WHEN`), so
each option shows its metavar, or a short one made from its type (`N`, `NUMBER`, `[a|b]`) or its
name (`--reviewer REVIEWER`); a flag shows none; an argument's name is its only label.

`HelpGroup` is the root command's class (`typer.Typer(cls=HelpGroup)`): when typer builds the
command tree (for every invocation, and for `typer.testing.CliRunner`), it gives each command,
subgroup and parameter of the tree these labels; other typer apps in the process are untouched.
"""

from __future__ import annotations

from types import UnionType
from typing import Any, Union, get_args, get_origin

from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption


class HelpGroup(TyperGroup):
    """The root group: labels the whole tree it is built with (see the module)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _label_tree(self)

    def get_help_option(self, ctx: Any) -> Any:
        return _flag(super().get_help_option(ctx))


class _Group(TyperGroup):
    def get_help_option(self, ctx: Any) -> Any:
        return _flag(super().get_help_option(ctx))


class _Command(TyperCommand):
    def get_help_option(self, ctx: Any) -> Any:
        return _flag(super().get_help_option(ctx))


class _Argument(TyperArgument):
    """An argument labelled by its name alone: `TARGET`, `INPUT...`."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def _usage_display_name(self) -> str:
        name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
        return name + ("..." if self.nargs != 1 else "")


def _label_tree(command: Any) -> None:
    for sub in getattr(command, "commands", {}).values():
        if type(sub) is TyperGroup:
            sub.__class__ = _Group
        elif type(sub) is TyperCommand:
            sub.__class__ = _Command
        _label_tree(sub)
    for param in getattr(command, "params", ()):
        if type(param) is TyperArgument:
            param.__class__ = _Argument
        elif isinstance(param, TyperOption):
            _label_option(param)


def _label_option(option: TyperOption) -> None:
    if option.is_flag or option.count:
        option.metavar = ""
    elif option.metavar is None:
        option.metavar = _metavar(option)


def _flag(option: Any) -> Any:
    """The help option, labelled like every other flag."""
    if isinstance(option, TyperOption):
        option.metavar = ""
    return option


def _metavar(option: TyperOption) -> str:
    """`[a|b]` for a choice, `N` for a whole number, `NUMBER` for a float, else the name."""
    described = getattr(option, "type_descriptor", None)  # typer >= 0.20
    if described is not None:
        choices = described.choices if described.is_choice else None
        kind = _base(described.annotation)
    else:  # earlier typers hand click its types
        click_type = getattr(option, "type", None)
        choices = getattr(click_type, "choices", None)
        name = getattr(click_type, "name", "")
        kind = int if name.startswith("integer") else float if name.startswith("float") else str
    if choices:
        return "[" + "|".join(str(getattr(c, "value", c)) for c in choices) + "]"
    if kind is int:
        return "N"
    if kind is float:
        return "NUMBER"
    return (option.name or "value").upper()


def _base(annotation: Any) -> Any:
    """`int | None` -> `int`."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    return (
        args[0] if len(args) == 1 and get_origin(annotation) in (Union, UnionType) else annotation
    )


__all__ = ["HelpGroup"]
