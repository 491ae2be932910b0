"""The status line: drawn only on a terminal, kept under the log lines, erased at the end."""

from __future__ import annotations

import io
import logging
import time

from harness import progress
from harness.progress import StatusLine


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_cell_phase_and_time_left_on_one_line() -> None:
    line = StatusLine(Tty(), tty=True)
    line.cell("cell 3/30 naive × set-image (new, trial 1)", left_s=600)
    line.phase("baseline load")
    assert line.text(time.monotonic() + 4.2) == "cell 3/30 naive × set-image (new, trial 1) · baseline load 4s · ~10 min left"
    line.cell("cell 30/30 naive × drain (new, trial 3)", left_s=40)
    assert line.text(time.monotonic() + 1).endswith("starting 1s · ~39s left")
    line.close()


def test_log_lines_go_above_the_status_line_and_close_erases_it() -> None:
    stream = Tty()
    with progress.logging_to(stream, {"harness": logging.INFO}) as line:
        line.cell("cell 1/2 a × b", None)
        logging.getLogger("harness.test").info("[run] something happened")
        line.close()
    erase = "\r\x1b[2K"
    assert (
        stream.getvalue()
        == f"{erase}cell 1/2 a × b · starting 0s{erase}[run] something happened\n{erase}cell 1/2 a × b · starting 0s{erase}"
    )


def test_nothing_but_log_lines_when_not_a_terminal() -> None:
    stream = io.StringIO()
    with progress.logging_to(stream, {"harness": logging.INFO}) as line:
        line.cell("cell 1/2 a × b", 60)
        progress.phase("tail load")
        logging.getLogger("harness.test").info("plain")
        line.close()
    assert stream.getvalue() == "plain\n"
    assert progress.status() is None  # current only inside logging_to
