"""How a ``hostsim`` command ends: one line on stderr and an exit code.

2 when the input was refused and nothing changed, 1 for any other failure (the steps already
done were printed by the command itself). The CLI and the demo both run commands through
:func:`guarded`, so a demo step ends exactly as the same command typed at a shell would.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from hostsim import config
from hostsim.contract import ConnectorError, PluginError, StepStatus

EXIT_FAILURE = 1
EXIT_INVALID = 2

log = logging.getLogger("hostsim")


class UsageError(Exception):
    """A command line the parser accepted but that makes no sense (exit 2)."""


def exit_code(error: ConnectorError) -> int:
    changed = any(step.status is StepStatus.DONE for step in error.steps)
    return EXIT_INVALID if error.invalid_input and not changed else EXIT_FAILURE


def guarded(args: argparse.Namespace, body: Callable[[argparse.Namespace], int]) -> int:
    """Run one command, turning every failure into one line on stderr and an exit code."""
    try:
        with config.located_errors(args.config):
            return body(args)
    except ConnectorError as exc:
        if args.debug:
            log.exception("%s failed", args.command)
        print(f"hostsim: error: {exc.message}", file=sys.stderr)
        return exit_code(exc)
    except (UsageError, PluginError) as exc:
        if args.debug:
            log.exception("%s failed", args.command)
        print(f"hostsim: error: {exc}", file=sys.stderr)
        return EXIT_INVALID if isinstance(exc, UsageError) else EXIT_FAILURE
    except BrokenPipeError:
        return EXIT_FAILURE
    except Exception as exc:
        if args.debug:
            raise
        print(
            f"hostsim: internal error: {type(exc).__name__}: {exc} (rerun with --debug)",
            file=sys.stderr,
        )
        return EXIT_FAILURE
