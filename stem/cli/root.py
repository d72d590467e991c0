"""The ``stem`` group: global options, the app it acts on, and errors at the edge.

Every error ends as ONE line on stderr, ``stem: error: <message>``, and an exit code
(tracebacks only with ``--debug``)::

    0    ok
    1    the job failed (a waited-for result was a failure), or another job error
    2    usage or config error: bad option, bad JSON, invalid setting, unknown --app
    3    Redis unreachable or refused the command, or another outside failure
    4    not found: no such job, dead-letter entry, schedule entry or status file
    5    timed out waiting for a result
    70   internal error: a bug in stem (run with --debug and report the traceback)
    130  interrupted (Ctrl-C)
    141  stdout was closed by its reader (``stem dlq list | head``): stopped quietly
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import traceback
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click

from stem.errors import (
    BrokerRefused,
    BrokerUnavailable,
    JobFailed,
    JobNotFound,
    NotFound,
    OutsideError,
    ResultTimeout,
    StemError,
    UsageError,
)

if TYPE_CHECKING:
    from stem.app import Stem

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_NOT_FOUND = 4
EXIT_TIMEOUT = 5
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130
EXIT_PIPE_CLOSED = 141

EXIT_CODES_HELP = """Exit codes:

\b
  0    ok
  1    the job failed (a waited-for result was a failure)
  2    usage or config error (bad option, bad JSON, bad --app, ...)
  3    Redis unreachable (or another failure outside stem)
  4    not found (no such job, dead-letter entry, schedule entry, ...)
  5    timed out waiting for a result
  70   internal error (a bug: run with --debug and report it)
  130  interrupted (Ctrl-C)
  141  stdout was closed early (e.g. piped into head)
"""


class State:
    """What the global options chose; ``app`` is built on first use.

    Commands that need Redis read ``state.app``; the connection it opens is closed when
    the command ends (``close``). Options given after the command name override the ones
    before it, as long as the app has not been built yet.
    """

    def __init__(self) -> None:
        self.debug = False
        self.redis_url: str | None = None
        #: True when --redis-url was typed, not taken from $STEM_REDIS_URL.
        self.redis_url_explicit = False
        #: Where the Redis URL in use came from (``--redis-url``, ``$STEM_REDIS_URL``,
        #: the app's code, ./.stem/redis.url), once the app is built; for error messages.
        self.redis_url_source: str | None = None
        self.app_spec: str | None = None
        self.namespace: str | None = None
        self._app: Stem | None = None

    @property
    def app(self) -> Stem:
        """The ``--app`` app (connected as the options say), else a bare ``Stem``."""
        if self._app is None:
            self._app = self._build_app()
        return self._app

    @property
    def app_loaded(self) -> bool:
        """Whether an ``--app`` was given (so task names can be checked)."""
        return self.app_spec is not None

    def _build_app(self) -> Stem:
        from stem.app import Stem
        from stem.config import load_app, resolve_redis_url, url_file_source

        option = "--redis-url" if self.redis_url_explicit else "$STEM_REDIS_URL"
        if self.app_spec is None:
            url = resolve_redis_url(self.redis_url)
            self.redis_url_source = option if self.redis_url else url and url_file_source()
            return Stem(url, namespace=self.namespace or "stem")
        app = load_app(self.app_spec)
        # A URL typed on the command line wins over the app's; $STEM_REDIS_URL does not
        # override a URL written in the app's code (the app already falls back to it).
        if self.redis_url is not None and (self.redis_url_explicit or app.redis_url is None):
            app.connect(self.redis_url, namespace=self.namespace)
            self.redis_url_source = option
        else:
            if app.redis_url is not None:
                self.redis_url_source = f"the app's code, --app {self.app_spec}"
            elif resolve_redis_url() is not None:
                self.redis_url_source = url_file_source()
            if self.namespace is not None:
                app.close()
                app.namespace = self.namespace
        return app

    def close(self) -> None:
        """Release the app's connection, if one was opened."""
        if self._app is not None:
            self._app.close()


#: click >= 8.4 raises this for an unknown command, with suggestions (older: none).
_NO_SUCH_COMMAND: Any = getattr(click.exceptions, "NoSuchCommand", ())


class LazyGroup(click.Group):
    """A group whose subcommands are imported when they are used, not when it is built.

    ``lazy`` maps a command name to ``("module:attr", short help)``. ``stem worker`` then
    imports the worker's command module only, not the admin, observe, dlq or schedule code
    and what they load; ``--help`` lists every command from the short helps kept here
    (tests/cli/test_help.py checks that each matches its command's own). A command is
    prepared when loaded as it would have been when added: it takes the global options
    after its name and names its environment variables (``env_prefix``, set by
    ``show_envvars``).
    """

    def __init__(
        self, *args: Any, lazy: Mapping[str, tuple[str, str]] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy: dict[str, tuple[str, str]] = dict(lazy or {})
        self.env_prefix: str | None = None

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            module, _, attr = self.lazy[cmd_name][0].partition(":")
            command = getattr(importlib.import_module(module), attr)
            if not isinstance(command, click.Command):  # pragma: no cover - a typo in a map
                raise TypeError(f"{module}:{attr} is not a click command")
            if self.env_prefix is not None:
                accept_global_options_after(command)
                show_envvars(command, f"{self.env_prefix}_{cmd_name.upper()}")
            self.commands[cmd_name] = command
        return super().get_command(ctx, cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except _NO_SUCH_COMMAND as exc:
            # click suggests a name from the loaded commands only: `stem wroker` must
            # still say "did you mean 'worker'?".
            raise _NO_SUCH_COMMAND(
                exc.command_name, possibilities=self.list_commands(ctx), ctx=ctx
            ) from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List every command with its short help, importing none that is not loaded."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            loaded = self.commands.get(name)
            if loaded is not None and loaded.hidden:
                continue
            # An unloaded command is shown through a stand-in with its kept help, so
            # the text is shortened exactly as click shortens a loaded command's.
            shown = loaded or click.Command(name, help=self.lazy[name][1])
            rows.append((name, shown.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


class StemGroup(LazyGroup):
    """The root group: runs a command and turns whatever it raises into an exit code."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the CLI; exit with the code of the outcome (return it when not standalone)."""
        state = State()
        extra.setdefault("obj", state)
        try:
            returned = super().main(
                args,
                prog_name or "stem",
                complete_var,
                standalone_mode=False,
                windows_expand_args=windows_expand_args,
                **extra,
            )
            code = returned if isinstance(returned, int) else EXIT_OK
        except BaseException as exc:  # the edge: everything ends here
            code = report(exc, debug=state.debug, redis_url_source=state.redis_url_source)
        finally:
            state.close()
        if standalone_mode:
            sys.exit(code)
        return code

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command, keeping two endings away from click's own handling.

        click turns EPIPE into exit code 1 (here: "the job failed") and prints a blank
        line on Ctrl-C even when stderr is not a terminal.
        """
        try:
            return super().invoke(ctx)
        except BrokenPipeError as exc:
            raise _ReaderGone from exc
        except KeyboardInterrupt as exc:
            raise _Interrupted from exc


class _ReaderGone(Exception):
    """stdout's reader went away (``stem dlq list | head``)."""


class _Interrupted(Exception):
    """Ctrl-C (SIGINT) while a command ran."""


def exit_code(exc: BaseException) -> int:
    """The documented exit code for ``exc``."""
    for kind, code in _CODES:
        if isinstance(exc, kind):
            return code
    return EXIT_INTERNAL


_CODES: list[tuple[type[BaseException], int]] = [
    (ResultTimeout, EXIT_TIMEOUT),
    (JobNotFound, EXIT_NOT_FOUND),
    (NotFound, EXIT_NOT_FOUND),
    (JobFailed, EXIT_FAILED),
    (UsageError, EXIT_USAGE),
    (OutsideError, EXIT_UNAVAILABLE),
    (StemError, EXIT_FAILED),
    (click.ClickException, EXIT_USAGE),
    (click.Abort, EXIT_INTERRUPTED),
    (KeyboardInterrupt, EXIT_INTERRUPTED),
    (_Interrupted, EXIT_INTERRUPTED),
]


def report(exc: BaseException, *, debug: bool, redis_url_source: str | None = None) -> int:
    """Print ``exc`` as one ``stem: error:`` line (plus its traceback with ``debug``).

    A Redis error names where the URL came from (``redis_url_source``), so that a stale
    setting is found at once.
    """
    exc = unwrap_group(exc)
    if isinstance(exc, SystemExit):
        return _system_exit(exc)
    if isinstance(exc, BrokenPipeError | _ReaderGone):
        # The reader went away (``stem dlq list | head``): stop quietly, as `cat` does.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_PIPE_CLOSED
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):
        click.echo(exc.format_message(), err=True)
        return EXIT_USAGE
    code = exit_code(exc)
    if code == EXIT_INTERRUPTED and sys.stderr.isatty():
        click.echo(err=True)  # end the terminal's "^C" line first
    if debug and not isinstance(exc, click.ClickException | click.Abort):
        traceback.print_exception(exc, file=sys.stderr)
    message = _message(exc, code)
    if redis_url_source and isinstance(exc, BrokerUnavailable | BrokerRefused):
        message = f"{message.rstrip('. ')} (from {redis_url_source})"
    error(message)
    return code


def unwrap_group(exc: BaseException) -> BaseException:
    """The one exception inside ``exc`` if it is an exception group holding just one.

    An error raised inside a trio nursery (an actor's ``trio.run``) reaches the edge
    wrapped in an ``ExceptionGroup``; with a single error inside, that error decides the
    exit code and the message. A group of several stays a group (an internal error).
    """
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def error(message: str) -> None:
    """Print ``stem: error: <message>`` on stderr, on one line."""
    click.echo(f"stem: error: {' '.join(message.split())}", err=True)


def _message(exc: BaseException, code: int) -> str:
    if isinstance(exc, click.UsageError):
        hint = f"; see '{exc.ctx.command_path} --help'" if exc.ctx is not None else ""
        # click's "No such option '--quee'. Did you mean '--queue'?" as one clause.
        text = re.sub(r"\. Did you mean (.+)\?$", r" (did you mean \1?)", _click_text(exc))
        return text.rstrip(".") + hint
    if isinstance(exc, click.ClickException):
        return exc.format_message()
    if code == EXIT_INTERRUPTED:
        return "interrupted"
    if code == EXIT_INTERNAL:
        return (
            f"internal error: {type(exc).__name__}: {exc} "
            "(run with --debug for the traceback, and please report it)"
        )
    return str(exc) or type(exc).__name__


def _click_text(exc: click.UsageError) -> str:
    """click's message, naming an option's env var only when the value came from it."""
    param = getattr(exc, "param", None)
    if not isinstance(param, click.Option) or exc.ctx is None or param.name is None:
        return exc.format_message()
    source = exc.ctx.get_parameter_source(param.name)
    shown = param.show_envvar
    param.show_envvar = source is click.core.ParameterSource.ENVIRONMENT
    try:
        return exc.format_message()
    finally:
        param.show_envvar = shown


def _system_exit(exc: SystemExit) -> int:
    if exc.code is None:
        return EXIT_OK
    if isinstance(exc.code, int):
        return exc.code
    error(str(exc.code))
    return EXIT_FAILED


# -- global options -------------------------------------------------------------------


def _set(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """Store a global option on the State (before or after the command name)."""
    state = ctx.find_object(State)
    if state is None or value is None or param.name is None:
        return
    if param.name == "debug":
        state.debug = state.debug or bool(value)
        return
    setattr(state, param.name, value)
    if param.name == "redis_url":
        source = ctx.get_parameter_source(param.name)
        state.redis_url_explicit = source is click.core.ParameterSource.COMMANDLINE


def global_options(*, hidden: bool) -> list[click.Option]:
    """The global options; ``hidden`` copies go on every command so they may follow it."""
    env = (lambda name: None) if hidden else (lambda name: name)
    return [
        click.Option(
            ["--redis-url"],
            envvar=env("STEM_REDIS_URL"),
            metavar="URL",
            expose_value=False,
            callback=_set,
            hidden=hidden,
            help="Redis URL (redis://, rediss://, unix://).",
            show_default="./.stem/redis.url of a running `stem supervise`",
        ),
        click.Option(
            ["-A", "--app", "app_spec"],
            envvar=env("STEM_APP"),
            metavar="MODULE:ATTR",
            expose_value=False,
            callback=_set,
            hidden=hidden,
            help="The stem.Stem app, e.g. myapp.jobs:app. Needed by `worker` and "
            "`supervise`; other commands work without it.",
        ),
        click.Option(
            ["--namespace"],
            envvar=env("STEM_NAMESPACE"),
            expose_value=False,
            callback=_set,
            hidden=hidden,
            help="Key namespace.",
            show_default="the app's, else 'stem'",
        ),
        click.Option(
            ["--debug"],
            is_flag=True,
            default=None,
            envvar=env("STEM_DEBUG"),
            is_eager=True,
            expose_value=False,
            callback=_set,
            hidden=hidden,
            help="Show the traceback of an error.",
        ),
    ]


def _set_log_level(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    # Through the environment, so that the actors a supervisor starts inherit it too
    # (stem.observe.logs reads $STEM_LOG_LEVEL).
    given = ctx.get_parameter_source(param.name or "") is not click.core.ParameterSource.DEFAULT
    if value is not None and given:
        os.environ["STEM_LOG_LEVEL"] = value.upper()


#: ``-l/--log-level`` of the actor commands.
log_level_option = click.option(
    "-l",
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    envvar="STEM_LOG_LEVEL",
    default="INFO",
    expose_value=False,
    callback=_set_log_level,
    help="Least severe log records to print.",
)


def show_envvars(command: click.Command, prefix: str = "STEM") -> None:
    """Give every option an environment variable and list it in ``--help`` (recursively).

    An option without its own ``envvar`` reads ``STEM_<COMMAND>_<OPTION>``, named after
    its long flag (``stem worker --stop-timeout-s`` reads ``STEM_WORKER_STOP_TIMEOUT_S``,
    ``stem result wait --json`` reads ``STEM_RESULT_WAIT_JSON``). The hidden copies of the
    global options read only their global names.
    """
    for param in command.params:
        if not isinstance(param, click.Option):
            continue
        if param.hidden or param.name in ("help", "version"):
            param.allow_from_autoenv = False
            continue
        if not param.envvar:
            flag = max(param.opts, key=len).lstrip("-").replace("-", "_").upper()
            param.envvar = f"{prefix}_{flag}"
        param.show_envvar = True
    if isinstance(command, LazyGroup):
        command.env_prefix = prefix  # its lazy commands get theirs when they load
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            show_envvars(sub, f"{prefix}_{name.upper()}")


def accept_global_options_after(command: click.Command) -> None:
    """Let ``stem worker --app x`` mean ``stem --app x worker`` (recursively; a group that
    runs by itself, like ``stem worker``, takes them too)."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            accept_global_options_after(sub)
        if not command.invoke_without_command:
            return
    names = {name for p in command.params for name in p.opts}
    command.params += [o for o in global_options(hidden=True) if not names.intersection(o.opts)]


@click.group(
    name="stem",
    cls=StemGroup,
    epilog="""Examples:

\b
  stem --app myapp.jobs:app supervise --workers 2
  stem enqueue myapp.jobs.resize --args '[42, 800]'
  stem result wait 01b8dac5b4009f3c2a7e5d1b8c460e27 --timeout 30
  stem observe queues
  stem dlq list

Global options may also follow the command name (`stem worker --app myapp.jobs:app`).

"""
    + EXIT_CODES_HELP,
    context_settings={
        "help_option_names": ["-h", "--help"],
        "max_content_width": 100,
        "show_default": True,
    },
)
@click.version_option(package_name="stem-jobs", prog_name="stem")
def cli() -> None:
    """stem: background jobs on Redis Streams.

    Run the actors (supervise, worker, reclaim, beat), enqueue jobs, wait for results,
    look at queues and workers, and handle the dead-letter queue.
    """


cli.params[:0] = global_options(hidden=False)
