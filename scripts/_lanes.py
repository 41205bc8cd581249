"""The suite in lanes (scripts/test with no arguments): ordinary pytest processes side by side, and mypy.

Lanes A1-A3: the modules that mostly wait (timers, redelivery, child processes, Redis and Celery workers,
PostgreSQL, nu, a server's latency) or need the client to outrun a server (a token bucket must see
throttles), at normal priority so their timing margins hold; three of them because their wall is
waiting, not CPU. Lanes B1 and B2: the CPU-bound rest under ``nice``, in halves of about equal CPU. The
B lanes run last, alone, one core each: a module there that waits leaves its core idle (the run's end
waits for it), where in an A lane its waits pass while the B lanes compute. A module belongs to a lane by
being listed in ``LANES``; a new module lands in the last lane (None). Children inherit a lane's
priority: a module that starts workers or servers and waits on them belongs in an A lane. The numbers
they were balanced on, and how to re-balance, are in docs/testing.md. Each lane runs under ``coverage
run`` when ``GREENFETCH_COVERAGE=1``; the data of every process is combined at the end into one line.
Each lane writes its own log; all are printed whole when every lane has ended, each headed by its wall
and CPU seconds, then one line of walls, the coverage line and the totals. The exit code is non-zero
when any lane failed or coverage is below its floor.

A lane that has not ended after ``LIMIT`` seconds (``GREENFETCH_LANE_LIMIT``) is stopped, with its
children, and counts as failed: under gevent a test can wait forever on a greenlet that died (the hub
still has a child process to watch, so gevent never raises LoopExit), and pytest-timeout's alarm fires
once per test, while Hypothesis shrinking a failure calls the test again. pytest's
``faulthandler_timeout`` (pyproject.toml) has by then printed where each thread was.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# name -> (nice, modules); the last lane, with None, takes every module no other lane lists
LANES: dict[str, tuple[int, list[str] | None]] = {
    "A1": (
        0,
        [
            "test_distributed.py",
            "test_distributed_catalog.py",
            "test_chaos.py",
            "test_nu_plugin.py",
            "test_prometheus.py",
        ],
    ),
    "A2": (
        0,
        [
            "test_sqlite_sink.py",
            "test_worker_signals.py",
            "test_process_sends.py",
            "test_drs_signals.py",
            "test_adaptive.py",
            # these wait on their servers' latency more than they compute (B2's, until 2026-12-07)
            "test_unreadable_errors.py",
            "test_http_session.py",
            "test_attempts.py",
        ],
    ),
    "A3": (
        0,
        [
            "test_cache_history.py",
            "test_postgres_e2e.py",
            "test_postgres_sink.py",
            "test_hardening_signals.py",
            "test_credentials.py",
            # these wait on their servers (nu's, the loopback's latency) more than they compute (B1's and
            # B2's, until 2026-12-07)
            "test_nu_catalog.py",
            "test_inventory_loopback.py",
            "test_catalog_pacing.py",
            "test_http_tls.py",
            "test_moto_server.py",
            "test_http_answer.py",
        ],
    ),
    "B1": (
        10,
        [
            "test_engine_loopback.py",
            "test_processes.py",
            "test_drs_compare.py",
            "test_catalog_moto.py",
            "test_first_hour.py",
            "test_hardening_nu.py",
            "test_diff.py",
            "test_body_limit.py",
            "test_engine_moto.py",
            "test_full_disk.py",
            "test_no_runnable_input.py",
            "test_json_parse.py",
            "test_xml_parse.py",
            "test_inventory_cost.py",
            # their gc.collect() calls walk the whole heap of the lane's process: ~1.1 s each in B2's
            # (~800 MB), ~0.3-0.5 s in B1's (~400 MB); and B2 had ~10 s more CPU (2026-12-07)
            "test_client_creation.py",
            "test_scheduler.py",
            "test_limits_bound.py",
            # B2 ended 27 s after B1 once the Python lanes came (2026-12-08: 107 s of CPU against 102)
            "test_inventory_cpu.py",
            "test_page_json.py",
            "test_page_part14.py",
        ],
    ),
    "B2": (10, None),
}
LIMIT = float(os.environ.get("GREENFETCH_LANE_LIMIT", "1200"))
COUNTS = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)")


def lane_commands(coverage: bool) -> dict[str, list[str]]:
    """Each lane's command: pytest on its modules (the lane with None on ``tests`` less the others'),
    under ``coverage run`` when ``coverage``; and mypy, which needs nothing the tests need, beside them."""
    tests = ROOT / "tests"
    pytest = [
        sys.executable,
        "-m",
        *(["coverage", "run", "-m"] if coverage else []),
        "pytest",
        "--durations=10",
    ]
    listed = [name for _, modules in LANES.values() for name in modules or []]
    commands = {}
    for name, (niceness, modules) in LANES.items():
        nice = ["nice", "-n", str(niceness)] if niceness else []
        if modules is None:
            args = [str(tests)] + [f"--ignore={tests / m}" for m in listed]
        else:
            args = [str(tests / m) for m in modules if (tests / m).exists()]
        commands[name] = nice + pytest + args
    commands["mypy"] = ["nice", "-n", "10", sys.executable, "-m", "mypy"]
    commands["botocore-floor"] = floor_command()
    commands.update(pythons_commands())
    return commands


FLOOR = ROOT / ".botocore-floor"  # botocore 1.36.0, scripts/install-botocore-floor
FLOOR_VERSION = "1.36.0"
FLOOR_TESTS = [  # the modules that hold greenfetch's botocore adaptations to botocore's own code
    "test_headers_parity.py",
    "test_botocore_fast_parity.py",
    "test_model_loader.py",
    "test_timestamps.py",
    "test_xml_parse.py",
    "test_json_parse.py",
    "test_endpoint_account.py",
    "test_client_creation.py",
    "test_paging.py::test_plan_gives_what_botocore_paginator_gives",
    "test_account_cost.py",
    # an inventory through AssumeRole, and worker processes' sealed credentials, on botocore 1.36: its
    # frozen credentials have no account field (``_signing.frozen_record``, ``account_of_credentials``)
    "test_credentials.py",
]


def floor_command() -> list[str]:
    """The lowest botocore greenfetch is checked on, first on PYTHONPATH (no coverage: the lanes cover
    the code; this lane checks it imports and holds there): the version asserted, then the parity
    suites. moto's server needs a newer botocore, so the modules here are those that run without it."""
    check = (
        f"import greenfetch, botocore; assert botocore.__version__ == {FLOOR_VERSION!r}, botocore.__version__"
    )
    tests = [str(ROOT / "tests" / t) for t in FLOOR_TESTS]
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests]
    script = f"{shlex.join([sys.executable, '-c', check])} && exec {shlex.join(pytest)}"
    return ["nice", "-n", "10", "env", f"PYTHONPATH={FLOOR}", "sh", "-c", script]


PYTHONS = ROOT / ".pythons"  # a venv per other Python found here (scripts/install-pythons)
_PARITY = "test_botocore_fast_parity.py::test_"
PYTHONS_TESTS = [  # the tests whose premises are the interpreter's, not botocore's (docs/testing.md)
    # every module of greenfetch imports here (the gevent session's: where geventhttpclient is installed)
    "test_errors.py::test_every_exception_greenfetch_defines_is_in_the_one_tree",
    # gevent patches before ssl is imported, and says so when it cannot
    "test_patch.py::test_import_first_patches_the_standard_library",
    "test_patch.py::test_import_after_ssl_fails_with_a_clear_message_not_a_recursion_error[ssl]",
    # the botocore adaptations that read the standard library: urllib's proxies, os.environ's store,
    # inspect, uuid, logging, urllib.parse, http.client's header class
    *(
        _PARITY + name
        for name in (
            "an_endpoints_proxies_are_botocores_in_any_environment",
            "the_proxies_follow_the_environments_order",
            "the_environment_is_read_once_while_it_is_unchanged",
            "a_config_variable_from_the_environment_is_botocores",
            "a_clients_config_chain_raises_no_key_error_per_unset_variable",
            "the_keyword_check_is_botocores_for_every_kind_of_handler",
            "an_invocation_id_is_uuid4s_text_of_the_same_bytes",
            "the_recursion_detection_header_follows_a_replaced_environ_and_sessions_get_it",
            "the_emitters_debug_lines_are_botocores_when_a_handler_changes_logging",
            "a_query_body_is_written_as_urlencode_writes_it",
            "urljoin_is_botocores",
            "the_timestamp_is_strftimes",
        )
    ),
    "test_headers_parity.py::test_the_class_behaves_as_botocores_for_every_verb",
    "test_headers_parity.py::test_isinstance_and_other_policies",
    # datetime and time zones (timestamps), json's private encoder hooks, sqlite3's errors, nu's dates
    "test_timestamps.py::test_a_timestamp_is_what_botocore_parses",
    "test_jsonable.py",
    "test_inventory_cpu.py::test_an_encoder_made_once_writes_what_json_encoder_writes",
    "test_page_json.py::test_a_datetimes_text_is_its_isoformat",
    "test_sqlite_code.py",
    "test_nu_codec.py::test_a_nushell_date_reads_alike_on_every_python",
    # the HTTP session each Python gets, and ssl under it (tests skipped one by one where geventhttpclient
    # is not installed: a module skipped whole, as test_http_tls.py is, has no test a node id can name)
    "test_http_session.py::test_the_engine_uses_geventhttpclient_on_gevent_and_urllib3_on_threads",
    "test_http_session.py::test_falls_back_to_urllib3_for_what_geventhttpclient_lacks",
    "test_http_session.py::test_tls_with_a_ca_bundle",
    "test_client_creation.py::test_a_client_greenfetch_makes_for_gevent_builds_no_ssl_context",
    # object sizes differ by Python: the plan's memory bound says by how much
    "test_plan_part14.py::test_a_unit_holds_less_than_main_did",
]
UNCHECKED = "NOT CHECKED"


def pythons_commands() -> dict[str, list[str]]:
    """A lane per other Python pyproject.toml supports, "python-3.X": ``PYTHONS_TESTS`` in its venv (no
    coverage: the lanes cover the code; these check it holds there). One not found on this machine is
    said in its lane's log and passes (it was not checked); one whose venv could not be made fails."""
    found = [venv for venv in PYTHONS.glob("3.*") if venv.is_dir()]
    venvs = sorted(found, key=lambda venv: tuple(int(n) for n in venv.name.split(".")))
    if not venvs:
        return {"pythons": _say(f"other Pythons {UNCHECKED}: scripts/install-pythons has not run", 0)}
    tests = [str(ROOT / "tests" / t) for t in PYTHONS_TESTS]
    commands = {}
    for venv in venvs:
        name = f"python-{venv.name}"
        if (venv / "absent").exists():
            why = (venv / "absent").read_text().strip()
            commands[name] = _say(f"Python {venv.name} {UNCHECKED}: {why}", 0)
        elif not (venv / ".greenfetch-test").exists():  # the stamp of a venv made whole
            failed = venv / "failed"
            why = (
                failed.read_text() if failed.exists() else "its venv is incomplete (scripts/install-pythons)"
            )
            commands[name] = _say(f"Python {venv.name}: {why}", 1)
        else:
            pytest = [str(venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests]
            commands[name] = ["nice", "-n", "10", "env", "-u", "PYTHONPATH", *pytest]  # its own site only
    return commands


def _say(text: str, code: int) -> list[str]:
    return ["sh", "-c", f"echo {shlex.quote(text)}; exit {code}"]


def main() -> int:
    logs = Path(tempfile.mkdtemp(prefix="greenfetch-lanes-"))
    coverage = _coverage_wanted()
    env = os.environ.copy()
    if coverage:  # every process's data file here, combined at the end (subprocesses inherit it)
        env["COVERAGE_FILE"] = str(logs / ".coverage")
    lanes = lane_commands(coverage)
    started = time.monotonic()
    running: dict[str, tuple[subprocess.Popen[bytes], Any]] = {}
    ended: dict[str, tuple[int, float, float, bool]] = {}  # name -> (exit code, wall, CPU, hung)
    try:
        for name, cmd in lanes.items():
            log = open(logs / f"lane-{name}.log", "w")  # noqa: SIM115 (closed below)
            proc = subprocess.Popen(
                cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env, process_group=0
            )
            running[name] = (proc, log)
        while running:
            for name, (proc, log) in list(running.items()):
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                wall = time.monotonic() - started
                if pid:  # its CPU: its own and that of the children it waited for (servers, workers, CLIs)
                    proc.returncode = os.waitstatus_to_exitcode(status)
                    ended[name] = (proc.returncode, wall, usage.ru_utime + usage.ru_stime, False)
                elif wall >= LIMIT:
                    ended[name] = (_stop(proc), wall, 0.0, True)
                else:
                    continue
                log.close()
                del running[name]
            time.sleep(0.2)
    finally:  # Ctrl-C reaches this process only (each lane has its own process group): stop the lanes too
        for proc, _ in running.values():
            _stop(proc)
    totals: dict[str, int] = {}
    unchecked: list[str] = []  # a Python lane's "not checked" line, said again at the end
    for name, (code, wall, cpu, hung) in ended.items():
        text = (logs / f"lane-{name}.log").read_text(errors="replace")
        unchecked += [line for line in text.splitlines() if UNCHECKED in line]
        print(f"\n===== lane {name}: exit {code}, {wall:.0f} s wall, {cpu:.0f} s CPU =====")
        print(text, end="")
        if hung:
            print(
                f"\nlane {name} did not end within {LIMIT:.0f} s (GREENFETCH_LANE_LIMIT) and was stopped: a "
                "test hung, and pytest's 'Timeout' dump above shows where each thread was"
            )
        closing = [line for line in text.splitlines() if COUNTS.search(line) and " in " in line]
        for count, what in COUNTS.findall(closing[-1] if closing else ""):
            key = "errors" if what.startswith("error") else what
            totals[key] = totals.get(key, 0) + int(count)
    failed = any(code != 0 or hung for code, _, _, hung in ended.values())
    print(
        "\n===== " + ", ".join(f"{name} {wall:.0f} s" for name, (_, wall, _, _) in ended.items()) + " ====="
    )
    if coverage:
        failed |= not _coverage_report(env)
    print(
        f"{totals.get('passed', 0)} passed, {totals.get('failed', 0) + totals.get('errors', 0)} failed, "
        f"{totals.get('skipped', 0)} skipped"
    )
    for line in unchecked:
        print(line)
    return 1 if failed else 0


def _coverage_wanted() -> bool:
    """Coverage with GREENFETCH_COVERAGE=1 (CI sets it; or coverage.py is not installed: said, not failed).
    Off by default: it costs ~45% more CPU, 221 s -> 366 s of scripts/test on 2 cores (docs/testing.md)."""
    if os.environ.get("GREENFETCH_COVERAGE", "0") != "1":
        return False
    try:
        import coverage  # noqa: F401
    except ImportError:
        print("coverage.py is not installed (the test extra has it): no coverage this run", file=sys.stderr)
        return False
    return True


def _coverage_report(env: dict[str, str]) -> bool:
    """Combine every process's data and print one line; False when below fail_under (pyproject.toml)."""
    run = [sys.executable, "-m", "coverage"]
    subprocess.run([*run, "combine", "-q"], cwd=ROOT, env=env, check=False)
    total = subprocess.run(
        [*run, "report", "--format=total"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    from coverage import Coverage

    floor = Coverage(config_file=str(ROOT / "pyproject.toml")).config.fail_under
    below = total.returncode != 0
    print(
        f"line coverage {(total.stdout.split() or ['?'])[0]}% of greenfetch and nu_plugin (all lanes and the processes "
        f"they started), floor {floor:g}% (pyproject.toml fail_under){': BELOW THE FLOOR' if below else ''}"
    )
    if below and total.stderr.strip():
        print(total.stderr.strip())
    return not below


def _stop(proc: subprocess.Popen[bytes]) -> int:
    """End a lane and everything it started (its process group): SIGTERM, then SIGKILL after 10 s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            return proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            continue
    return proc.wait()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the lanes were stopped on the way out
        sys.exit(130)
