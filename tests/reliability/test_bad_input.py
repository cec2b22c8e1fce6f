"""Bad input refused before any work, as a user meets it: `autonat-search` run as a process
on each case of ``bad_input_cases``: one line, exit code 1, no store created, and the
message the table in ``docs/errors.md`` gives (so that the table cannot go stale).

Wall times are printed (``pytest -s``), never asserted; ``python
tests/reliability/bad_input_cases.py`` prints them for every case.
"""

import pytest
from bad_input_cases import CASES, documented_messages, run_case

DOCUMENTED = documented_messages()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_line_and_nothing_is_written(case, tmp_path):
    outcome = run_case(case, tmp_path / case.name)
    print(f"{case.name}: {outcome.seconds:.2f} s wall, {outcome.cpu_seconds:.2f} s cpu")
    assert outcome.returncode == 1, outcome.stderr
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1, outcome.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in outcome.stderr
    assert not outcome.store_created
    assert outcome.stdout == ""
    assert DOCUMENTED.get(case.name) == lines[0], "docs/errors.md is stale: regenerate it"


def test_every_documented_case_is_tested():
    assert sorted(DOCUMENTED) == sorted(c.name for c in CASES)
