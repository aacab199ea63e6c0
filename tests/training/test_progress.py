"""The progress display: a line per phase in logs, a redrawn line with elapsed time on a tty."""

import io
import time

from fibjax.training.progress import Progress


def test_log_mode_prints_each_phase_once():
    stream = io.StringIO()
    with Progress(stream, live=False) as progress:
        progress.phase("compiling vanilla")
        progress.phase("training vanilla")
    assert stream.getvalue() == "compiling vanilla ...\ntraining vanilla ...\n"


def test_live_mode_redraws_with_elapsed_time_and_clears():
    stream = io.StringIO()
    with Progress(stream, live=True) as progress:
        progress.phase("training attention")
        time.sleep(0.5)
    text = stream.getvalue()
    assert "\r\033[Ktraining attention " in text and " s" in text
    assert text.endswith("\r\033[K")  # the line is cleared for the results that follow


def test_close_twice_is_harmless():
    stream = io.StringIO()
    progress = Progress(stream, live=True).__enter__()
    progress.close()
    progress.close()
    assert stream.getvalue().count("\r\033[K") >= 1
