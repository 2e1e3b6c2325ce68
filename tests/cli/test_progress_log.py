"""What a long command says on stderr when it is not a terminal: progress lines and warnings."""

from __future__ import annotations

import logging
import re
import time

from conftest import SARS_FASTA

from sandgrain.cli import progress
from sandgrain.genome import composition as composition_module

LINE = re.compile(
    r"^sandgrain: composition of sars: (\d+)/(\d+) tasks \((\d+)%\), [\d.]+ [kMG]?bases/s, "
    r"(ETA|took) \d+:\d\d$"
)  # the first line may come before any task finished: "0/1 tasks (0%), 0:00 elapsed"
STARTING = re.compile(r"^sandgrain: composition of sars: 0/\d+ tasks \(0%\), \d+:\d\d elapsed$")


def test_progress_lines_on_a_non_terminal(cli, monkeypatch):
    assert cli("genome", "add", "sars", "--fasta", SARS_FASTA, "-q")[0] == 0
    counted = composition_module.count_bases

    def slow_count(seq):  # 30 tasks of 10 ms: long enough for several 50 ms lines
        time.sleep(0.01)
        return counted(seq)

    monkeypatch.setattr(composition_module, "count_bases", slow_count)
    monkeypatch.setattr(progress, "LOG_INTERVAL", 0.05)
    code, out, err = cli("genome", "composition", "sars", "--max-size", "1000")
    assert code == 0 and "29,903" in out
    lines = err.splitlines()
    assert len(lines) >= 3, err
    lines = [line for line in lines if not STARTING.match(line)]
    assert len(lines) >= 2 and all(LINE.match(line) for line in lines), err
    *during, last = (LINE.match(line).groups() for line in lines)
    assert all(kind == "ETA" for *_, kind in during)
    done, total, share, kind = last
    assert done == total and int(total) > 1 and share == "100" and kind == "took"

    code, _, err = cli("genome", "composition", "sars", "--max-size", "1000", "-q")
    assert code == 0 and err == ""


def test_a_short_run_prints_no_progress(cli):
    assert cli("genome", "add", "sars", "--fasta", SARS_FASTA, "-q")[0] == 0
    code, _, err = cli("genome", "composition", "sars")
    assert code == 0 and err == ""  # over before the first line is due


def test_log_line_wording():
    tally = progress._Tally("index yeast for NGG", "bases")
    tally.started -= 10  # ten seconds ago: 0.99 Mbases/s, 2.2 Mbases to go
    tally.update(812, 1024, 9_900_000, 12_100_000)
    assert tally.line() == (
        "sandgrain: index yeast for NGG: 812/1,024 tasks (81%), 990 kbases/s, ETA 0:02"
    )
    tasks_only = progress._Tally("search", None)
    tasks_only.update(0, 3)
    assert tasks_only.line() == "sandgrain: search: 0/3 tasks (0%), 0:00 elapsed"
    assert progress._clock(3725) == "1:02:05" and progress._si(12_100_000) == "12.1 M"


def test_warnings_are_one_line_on_stderr(cli, capsys):
    assert cli("genome", "list")[0] == 0  # the command installs the warning printer
    logging.getLogger("sandgrain.fanout.runner").warning(
        "task 'chrI:1-1000' (m:f) lost its worker\n(BrokenProcessPool: gone); retrying"
    )
    assert capsys.readouterr().err == (
        "sandgrain: warning: task 'chrI:1-1000' (m:f) lost its worker (BrokenProcessPool: "
        "gone); retrying\n"
    )
    progress.show_warnings()  # once only, however often commands run
    handlers = logging.getLogger("sandgrain").handlers
    assert sum(isinstance(h, progress._WarningLine) for h in handlers) == 1
