"""The command line: once through a subprocess, as a user starts it, and in-process for what
its arguments give (the exit code and the one line)."""

import pytest

from conftest import run_fibjax as run_cli
from conftest import run_in_process


def test_train_prints_what_the_notebook_prints():
    out = run_cli(
        "train", "--model", "attention", "--seed", "0", "--epochs", "2", "--n-terms", "80"
    )
    assert out.returncode == 0, out.stderr
    assert "33 parameters" in out.stdout
    assert "Epoch 2/2 - loss:" in out.stdout
    assert "Train set MSE = " in out.stdout
    assert "Test set MSE = " in out.stdout
    assert "compiling attention" in out.stderr  # the progress display, not a tty here


@pytest.mark.parametrize(
    "args, message",
    [
        (["--epochs", "0"], "epochs=0 must be an integer >= 1"),
        (["--model", "gru"], "model='gru' is unknown"),
        (["--window", "x"], "--window: invalid int value"),
        (["--learning-rate", "nan"], "learning_rate=nan"),
        (["--seed", "-3"], "seed -3"),
        (["--scaling", "zscore"], "scaling='zscore'"),
        (["--n-terms", "5000"], "n_terms=5000"),
        (["--optimizer", "lion"], "optimizer='lion'"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_arguments_give_one_line_and_status_2(args, message, capsys):
    out = run_in_process(capsys, "train", *args)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert message in lines[0]
    assert "Traceback" not in out.stderr


def test_a_ctrl_c_swallowed_by_a_gc_callback_is_still_seen(capsys):
    # JAX's garbage-collector callback can be where a Ctrl-C lands; Python then swallows the
    # KeyboardInterrupt and prints "Exception ignored". The run must still see it, quietly.
    import gc
    import os
    import signal

    from fibjax.cli import processes

    def callback(phase, info):
        if phase == "start":
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(10_000):  # the handler runs here, inside the callback
                pass

    before = signal.getsignal(signal.SIGINT)  # a test worker may ignore SIGINT
    with processes.catch_ctrl_c() as ctrl_c:
        gc.callbacks.append(callback)
        try:
            gc.collect()
        finally:
            gc.callbacks.remove(callback)
    assert ctrl_c["hit"]
    assert "KeyboardInterrupt" not in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is before  # restored


def test_the_quick_exit_runs_atexit_flushes_and_keeps_the_status(tmp_path):
    # The command line leaves without the interpreter's teardown; what a program relies on at
    # exit (atexit handlers, buffered output, the exit status) must survive that.
    import subprocess
    import sys

    marker = tmp_path / "atexit-ran"
    script = (
        "import atexit, sys\n"
        "from fibjax.cli.entry import exit_quickly\n"
        f"atexit.register(lambda: open({str(marker)!r}, 'w').write('yes'))\n"
        "sys.stdout.write('buffered, no newline')\n"
        "exit_quickly(3)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 3
    assert done.stdout == "buffered, no newline"
    assert marker.read_text() == "yes"


def test_train_takes_a_cell_and_a_pooling(capsys):
    from fibjax.cli.entry import main

    quick = ["--epochs", "1", "--n-terms", "60", "--window", "6", "--no-cache"]
    assert main(["train", "--cell", "lstm", "--model", "dot", *quick]) == 0
    h = 2
    # Keras's LSTM: kernel [1, 4H], recurrent kernel [H, 4H], bias [4H]; dot-product
    # attention: key kernel [H, H], query [H, 1]; Dense(1): [H, 1] and [1].
    expected = 4 * h + 4 * h * h + 4 * h + (h * h + h) + (h + 1)
    out = capsys.readouterr().out
    assert f"Model: dot (LSTM(2) → dot-product attention → Dense), {expected} parameters" in out


def test_help_lists_the_registered_cells_and_models(capsys):
    from fibjax.cli.entry import main
    from fibjax.models import CELL_NAMES, MODEL_NAMES

    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert ", ".join(CELL_NAMES) in text and ", ".join(MODEL_NAMES) in text
    assert not any(placeholder in text for placeholder in ("<cells>", "<models>", "<baseline>"))


@pytest.mark.parametrize("n", [1, 2])
def test_the_decision_line_counts_in_words(n):
    from fibjax.cli.sweep import decision_table

    line = decision_table({"decisions": {"attention": n, "vanilla": 0, "undecided": 0}})
    noun = "grid point" if n == 1 else "grid points"
    assert line.startswith(f"{n} {noun}: attention lower in {n},") and "(s)" not in line
