"""The supervisor of `werkbrug serve` without processes: its ports, its lock, its state file and its backoff."""

from __future__ import annotations

import os
import time

import pytest

from infra.serve import (
    BACKOFF,
    DB_PORT,
    HTTP_PORT,
    SERVICES,
    STEADY,
    Config,
    Layout,
    Ports,
    ServeRefused,
    Supervisor,
    _take_lock,
    check_writable,
    read_state,
    running_pid,
)


def test_each_service_has_a_fixed_database_and_health_port_and_the_blocks_move_together():
    ports = Ports()
    assert [ports.db_port(s) for s in SERVICES] == list(range(DB_PORT, DB_PORT + 5))
    assert [ports.http_port(s) for s in SERVICES] == list(range(HTTP_PORT, HTTP_PORT + 5))
    moved = Ports(db=30000, http=31000)
    assert moved.db_port("offer") == 30001 and moved.http_port("subject_rights") == 31004
    assert len({port for port, _ in moved.every()}) == 10


def test_ports_that_overlap_or_are_no_number_are_refused(monkeypatch, tmp_path):
    with pytest.raises(ServeRefused) as refused:
        Config.from_environment(tmp_path, db_port=9000, http_port=9003)
    assert refused.value.code == 2 and "overlap" in refused.value.line
    with pytest.raises(ServeRefused) as refused:
        Config.from_environment(tmp_path, db_port=80)
    assert refused.value.code == 2 and "bad port 80" in refused.value.line
    monkeypatch.setenv("WERKBRUG_SERVE_HTTP_PORT", "eighty")
    with pytest.raises(ServeRefused) as refused:
        Config.from_environment(tmp_path)
    assert refused.value.code == 2 and "WERKBRUG_SERVE_HTTP_PORT" in refused.value.line


def test_options_win_over_the_environment_which_wins_over_the_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("WERKBRUG_SERVE_DB_PORT", "40000")
    monkeypatch.setenv("WERKBRUG_VAR_DIR", str(tmp_path / "elsewhere"))
    config = Config.from_environment()
    assert config.ports == Ports(40000, HTTP_PORT) and config.layout.var == tmp_path / "elsewhere"
    assert Config.from_environment(tmp_path, db_port=41000).ports.db == 41000


def test_a_var_that_cannot_be_written_is_refused_in_one_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ServeRefused) as refused:
        check_writable(Layout(blocker / "var"))
    assert refused.value.code == 2 and "is not writable" in refused.value.line
    assert "\n" not in refused.value.line


def test_the_lock_names_the_supervisor_that_holds_it_and_refuses_a_second(tmp_path):
    layout = Layout(tmp_path)
    check_writable(layout)
    assert running_pid(layout) is None
    lock = _take_lock(layout)
    try:
        assert running_pid(layout) == os.getpid()
        with pytest.raises(ServeRefused) as refused:
            _take_lock(layout)
        assert refused.value.code == 2 and f"pid {os.getpid()}" in refused.value.line
    finally:
        os.close(lock)
    assert running_pid(layout) is None, "released when its holder closes it (or dies)"


def test_a_torn_or_foreign_state_file_is_no_state(tmp_path):
    layout = Layout(tmp_path)
    check_writable(layout)
    layout.state.write_text('{"supervisor_pid": 12')
    assert read_state(layout) is None
    layout.state.write_text('{"supervisor_pid": 12, "shoe_size": 44}')
    assert read_state(layout) is None


def supervisor(tmp_path) -> tuple[Supervisor, list[str]]:
    config = Config.from_environment(tmp_path)
    check_writable(config.layout)
    said: list[str] = []
    return Supervisor(config, detached=True, say=said.append), said


def test_a_process_that_keeps_dying_is_restarted_later_each_time_and_the_supervisor_says_so(tmp_path):
    sup, said = supervisor(tmp_path)
    intake = next(u for u in sup.units if u.kind == "service" and u.service == "intake")
    before = time.monotonic()
    delays = []
    for _ in range(len(BACKOFF) + 2):
        sup._died(intake, "killed by SIGKILL")
        delays.append(round(intake.restart_at - before))
        intake.restarts += 1
    assert delays == [1, 2, 4, 8, 16, 30, 30, 30]
    assert intake.state == "restarting" and "restart 8 in 30 s" in intake.note
    assert said[0] == f"intake killed by SIGKILL; restart 1 in 1 s (log: {sup.config.layout.shown(intake.log_path)})"


class _Alive:
    """A process that runs (for the supervisor's look at it)."""

    pid, returncode = 4242, None

    def poll(self):
        return None


async def test_a_process_up_and_healthy_for_a_while_dies_as_if_for_the_first_time(tmp_path, monkeypatch):
    sup, said = supervisor(tmp_path)
    billing = next(u for u in sup.units if u.kind == "service" and u.service == "billing")
    for unit in sup.units:
        unit.process.proc = _Alive()
        monkeypatch.setattr(unit, "look", lambda: True)
    billing.failures = 3
    await sup.tick()
    assert billing.state == "running" and billing.failures == 3, "not steady yet"
    assert any(line.startswith("billing is up") for line in said)
    billing.healthy_since = time.monotonic() - STEADY - 1
    await sup.tick()
    assert billing.failures == 0
    state = read_state(sup.config.layout)
    assert state is not None and state.service("billing").pid == 4242 and state.all_healthy
