"""Exposition for real: /metrics over HTTP, a Pushgateway push, the textfile, promtool, and a real
Prometheus server scraping a running ``greenfetch --metrics-port``.

Skips (with the reason) only where the Debian binaries are absent. Budget: < 15 s, most of it the
Prometheus end-to-end test (startup ~1 s, then two 1 s scrapes).
"""

import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import urllib.parse
import urllib.request

import pytest

import greenfetch  # noqa: F401  (conftest.py has already patched gevent first)
from greenfetch import Config, Engine
from greenfetch._exposition import ExpositionError, push, render, serve, write_textfile
from greenfetch.testing import free_port, wait_until

PROMTOOL, PROMETHEUS = shutil.which("promtool"), shutil.which("prometheus")
PUSHGATEWAY = shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")


@pytest.fixture(scope="module")
def busy_engine(moto_server):
    """An engine that has run successes, failures, retries of nothing, and dedupe calls."""
    engine = Engine(Config.resolve({"endpoint_url": moto_server.url, "region": "us-east-1"}))
    engine.batch_requests(
        [
            {"service": "s3", "operation": "ListBuckets"},
            {"service": "s3", "operation": "GetBucketLocation", "params": {"Bucket": "nope-prom"}},
            {"service": "nope-service", "operation": "X"},
        ]
    )
    engine.dedupe_request("k", lambda: 1)
    engine.metrics.set_limit("s3/us-east-1/default", 12)
    yield engine
    engine.close()


def _get(url, timeout=5.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read().decode()


@pytest.mark.skipif(
    not PROMTOOL, reason="promtool not installed (Debian package prometheus; scripts/install-prometheus)"
)
def test_promtool_accepts_our_exposition(busy_engine, tmp_path):
    text = render(busy_engine.metrics.registry)
    for name in (
        "greenfetch_request_duration_seconds_bucket",
        "greenfetch_request_errors_total",
        "greenfetch_dedupe_total",
        "greenfetch_concurrency_limit",
        "greenfetch_inflight_requests",
    ):
        assert name in text
    checked = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == "" and checked.stderr.strip() == ""  # no lint warnings either


def test_serve_answers_metrics_over_http(busy_engine):
    server = serve(busy_engine.metrics.registry, 0, addr="127.0.0.1")
    try:
        body = _get(f"http://127.0.0.1:{server.server_port}/metrics")
        assert (
            'greenfetch_request_duration_seconds_count{operation="ListBuckets",outcome="success",service="s3"}'
            in body
        )
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(ExpositionError, match="70000"):
        serve(busy_engine.metrics.registry, 70000)


def test_textfile_is_written_atomically_and_named_on_error(busy_engine, tmp_path):
    target = tmp_path / "greenfetch.prom"
    write_textfile(busy_engine.metrics.registry, target)
    write_textfile(busy_engine.metrics.registry, target)  # replacing an existing file
    assert "greenfetch_dedupe_total" in target.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["greenfetch.prom"]  # no temp file left behind
    with pytest.raises(ExpositionError, match="no-such-dir"):
        write_textfile(busy_engine.metrics.registry, tmp_path / "no-such-dir" / "x.prom")


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: list = []

    def do_PUT(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.command, self.path, self.headers["Content-Type"], body.decode()))
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_push_sends_the_exposition_to_a_receiver(busy_engine):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        push(busy_engine.metrics.registry, f"http://127.0.0.1:{server.server_port}", job="nightly")
    finally:
        server.shutdown()
        server.server_close()
    ((method, path, content_type, body),) = _Receiver.received
    assert (method, path) == ("PUT", "/metrics/job/nightly")
    assert content_type.startswith("text/plain") and "greenfetch_request_duration_seconds_bucket" in body
    closed = free_port()
    with pytest.raises(ExpositionError, match=f"127.0.0.1:{closed}"):
        push(busy_engine.metrics.registry, f"http://127.0.0.1:{closed}", timeout=2)


@pytest.mark.skipif(
    not PUSHGATEWAY, reason="prometheus-pushgateway not installed (Debian package prometheus-pushgateway)"
)
def test_push_to_a_real_pushgateway(busy_engine, tmp_path):
    port = free_port()
    gateway = subprocess.Popen(
        [PUSHGATEWAY, f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _try(lambda: _get(url + "/-/ready")), 10, "the pushgateway to be ready")
        push(busy_engine.metrics.registry, url, job="greenfetch-test")
        text = _get(url + "/metrics")
        assert 'greenfetch_dedupe_total{instance="",job="greenfetch-test",outcome="executed"} 1' in text
    finally:
        gateway.terminate()
        gateway.wait(timeout=10)


def _try(fn):
    try:
        return fn()
    except OSError:
        return None


@pytest.mark.skipif(
    not PROMETHEUS, reason="prometheus not installed (Debian package prometheus; scripts/install-prometheus)"
)
def test_real_prometheus_scrapes_a_running_greenfetch(tmp_path, loopback):
    metrics_port, prom_port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        json.dumps(
            {  # JSON is YAML
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [
                    {"job_name": "greenfetch", "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}]}
                ],
            }
        )
    )
    requests = tmp_path / "requests.jsonl"
    requests.write_text(
        "".join(
            json.dumps({"service": "dynamodb", "operation": "ListTables", "params": {"Limit": i % 50 + 1}})
            + "\n"
            for i in range(400)
        )
    )
    prometheus = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    loopback.control(latency=0.1, jitter=0.05)
    # 400 requests at concurrency 2 take ~25 s: far longer than the test waits; it is killed after.
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "greenfetch.cli",
            "--metrics-port",
            str(metrics_port),
            "--endpoint-url",
            loopback.url,
            "--region",
            "us-east-1",
            "batch",
            str(requests),
            "--concurrency",
            "2",
            "--output",
            "jsonl",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    )
    try:
        query = "histogram_quantile(0.9, sum by (le) (rate(greenfetch_request_duration_seconds_bucket[1m])))"
        api = f"http://127.0.0.1:{prom_port}/api/v1/query?" + urllib.parse.urlencode({"query": query})

        def answer():
            found = _try(lambda: json.loads(_get(api)))
            result = (found or {}).get("data", {}).get("result", [])
            return result and result[0]["value"][1] not in ("NaN", "+Inf") and result

        result = wait_until(answer, 30, "Prometheus to answer the query", interval=0.2)
        assert run.poll() is None, run.stderr.read().decode() if run.stderr else ""
        assert result, "Prometheus never returned a value for histogram_quantile over our histogram"
        assert 0.05 < float(result[0]["value"][1]) < 1.0  # p90 of ~0.1-0.15 s requests, bucket-interpolated
    finally:
        run.kill()
        run.wait(timeout=10)
        prometheus.terminate()
        prometheus.wait(timeout=10)


def test_stats_command_reads_a_textfile_or_a_metrics_page(busy_engine, tmp_path):
    from click.testing import CliRunner

    from greenfetch.cli import load_commands

    cli = load_commands()
    path = tmp_path / "run.prom"
    write_textfile(busy_engine.metrics.registry, path)
    table = CliRunner().invoke(cli, ["stats", "--textfile", str(path)])
    assert table.exit_code == 0, table.output
    assert "s3:ListBuckets" in table.output and "p99 ms" in table.output
    server = serve(busy_engine.metrics.registry, 0, addr="127.0.0.1")
    try:
        page = CliRunner().invoke(
            cli, ["stats", "--url", f"http://127.0.0.1:{server.server_port}/metrics", "-o", "json"]
        )
    finally:
        server.shutdown()
        server.server_close()
    rows = {r["operation"]: r for r in json.loads(page.output)}
    ours = {r["operation"]: r for r in busy_engine.metrics.perf_stats()}
    for name in ("s3:ListBuckets", "s3:GetBucketLocation"):
        assert {k: rows[name][k] for k in ("count", "errors", "throttles")} == {
            k: ours[name][k] for k in ("count", "errors", "throttles")
        }
        assert rows[name]["p50"] is not None and rows[name]["max"] is None
    missing = CliRunner().invoke(cli, ["stats"])
    assert missing.exit_code == 2 and "--textfile" in missing.output


def test_bucket_quantile_matches_histogram_quantile():
    from greenfetch.cli._exposition_stats import bucket_quantile

    cumulative = [(0.1, 10.0), (0.5, 90.0), (1.0, 100.0), (float("inf"), 100.0)]
    assert bucket_quantile(0.5, cumulative) == pytest.approx(0.1 + 0.4 * (50 - 10) / 80)
    assert bucket_quantile(0.05, cumulative) == pytest.approx(0.05)
    assert bucket_quantile(0.99, [(1.0, 0.0), (float("inf"), 5.0)]) == 1.0
    assert bucket_quantile(0.5, []) is None
