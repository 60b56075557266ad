#!/usr/bin/python3
"""Writes monitoring/grafana/dashboards/*.json: the three dashboards zdm ships, as Grafana 10
JSON (schemaVersion 39, timeseries and stat panels, a variable per dashboard).

The JSON is generated so that every panel follows the same conventions (one datasource, the
same rate window, legends that name what a series is) and is committed, so Grafana, the
dashboard page (`zdm-deploy dashboard`) and the tests read the same files. After editing this
script run it, and commit both; ctest monitoring_dashboards fails while they differ.

Conventions:
- every query selects job="zdm_proxy" or job="node" and honours the dashboard's variable;
- rates use Grafana's $__rate_interval; latency quantiles come from summed bucket rates
  (p50, p90, p99, p99.9), never from irate;
- panels that break failures down (by node and error) keep only series above 0, so they are
  empty while nothing fails and show exactly what fails when something does; the headline
  failure panels show their zero line.
"""
import json
import os
import sys

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dashboards")
DATASOURCE = {"type": "prometheus", "uid": "zdm-prometheus"}  # provisioning/datasources
RATE = "$__rate_interval"
QUANTILES = [("0.5", "p50"), ("0.9", "p90"), ("0.99", "p99"), ("0.999", "p99.9")]


def target(expr, legend, instant=False):
    t = {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "range": not instant,
         "instant": instant}
    return t


class Dashboard:
    def __init__(self, uid, title, description, variable):
        self.uid, self.title, self.description = uid, title, description
        self.variable = variable
        self.panels = []
        self.x = self.y = 0
        self.row_height = 0

    def row(self, title):
        self._newline()
        self.panels.append({"type": "row", "title": title, "collapsed": False, "panels": [],
                            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}})
        self.y += 1

    def _newline(self):
        if self.x:
            self.y += self.row_height
            self.x = self.row_height = 0

    def _place(self, w, h):
        if self.x + w > 24:
            self._newline()
        pos = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.x += w
        self.row_height = max(self.row_height, h)
        return pos

    def timeseries(self, title, description, targets, unit="short", w=12, h=8):
        self.panels.append({
            "type": "timeseries", "title": title, "description": description,
            "datasource": DATASOURCE, "gridPos": self._place(w, h),
            "targets": targets,
            "fieldConfig": {"defaults": {"unit": unit, "min": 0,
                                         "custom": {"drawStyle": "line", "lineWidth": 1,
                                                    "fillOpacity": 10, "showPoints": "never",
                                                    "spanNulls": False}},
                            "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                        "tooltip": {"mode": "multi", "sort": "desc"}},
        })

    def stat(self, title, description, targets, unit="short", text_mode="value_and_name", w=6, h=4):
        self.panels.append({
            "type": "stat", "title": title, "description": description,
            "datasource": DATASOURCE, "gridPos": self._place(w, h),
            "targets": targets,
            "fieldConfig": {"defaults": {"unit": unit,
                                         "thresholds": {"mode": "absolute",
                                                        "steps": [{"color": "green", "value": None}]}},
                            "overrides": []},
            "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "textMode": text_mode, "colorMode": "none", "graphMode": "none",
                        "justifyMode": "auto", "orientation": "auto"},
        })

    def json(self):
        name, label, query = self.variable
        panels = []
        for i, p in enumerate(self.panels, start=1):
            p = dict(p, id=i)
            for j, t in enumerate(p.get("targets", [])):
                t["refId"] = chr(ord("A") + j)
            panels.append(p)
        return {
            "uid": self.uid, "title": self.title, "description": self.description,
            "tags": ["zdm"], "timezone": "browser", "editable": True, "graphTooltip": 1,
            "schemaVersion": 39, "version": 1, "refresh": "30s",
            "time": {"from": "now-1h", "to": "now"},
            "templating": {"list": [{
                "name": name, "label": label, "type": "query", "datasource": DATASOURCE,
                "definition": query, "query": {"query": query, "refId": "VariableQuery"},
                "refresh": 2, "multi": True, "includeAll": True, "allValue": ".*",
                "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
                "sort": 1, "regex": "", "hide": 0, "options": [],
            }]},
            "annotations": {"list": []},
            "panels": panels,
        }


def quantiles(metric, selector, by="", legend=""):
    """One target per quantile of histogram `metric` (…_bucket), summed over everything but `by`."""
    group = f"{by}, le" if by else "le"
    prefix = legend + " " if legend else ""
    return [target(f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket{{{selector}}}[{RATE}])))",
                   f"{prefix}{name}") for q, name in QUANTILES]


def zdm_proxy():
    I = 'job="zdm_proxy",instance=~"$instance"'
    d = Dashboard("zdm-proxy", "ZDM Proxy",
                  "Requests through the proxies: throughput, latency, failures, connections, and each "
                  "origin/target/async node. Metric names are ZDM's (reference: zdm-proxy metrics).",
                  ("instance", "Proxy", 'label_values(up{job="zdm_proxy"}, instance)'))
    P = "zdm_proxy_request_duration_seconds"
    d.row("Throughput")
    d.timeseries("Read throughput by instance",
                 "Reads answered per second by each proxy: reads_origin are served by origin, reads_target by target "
                 "(which one is the primary cluster).",
                 [target(f'sum by (instance, type) (rate({P}_count{{{I},type=~"reads_origin|reads_target"}}[{RATE}]))',
                         "{{instance}} {{type}}")], "reqps")
    d.timeseries("Write throughput by instance",
                 "Writes answered per second by each proxy; every write goes to both clusters.",
                 [target(f'sum by (instance) (rate({P}_count{{{I},type="writes"}}[{RATE}]))', "{{instance}}")],
                 "reqps")
    d.timeseries("Throughput, all proxies",
                 "Requests per second through all selected proxies, by type, and the reads mirrored "
                 "asynchronously to the secondary cluster (read_mode DUAL_ASYNC_ON_SECONDARY).",
                 [target(f"sum by (type) (rate({P}_count{{{I}}}[{RATE}]))", "{{type}}"),
                  target(f"sum(rate(zdm_async_request_duration_seconds_count{{{I}}}[{RATE}]))",
                         "async (mirrored) reads")], "reqps")
    d.timeseries("Mirrored reads by instance",
                 "Reads each proxy mirrored to the secondary cluster per second; zero in PRIMARY_ONLY.",
                 [target(f"sum by (instance) (rate(zdm_async_request_duration_seconds_count{{{I}}}[{RATE}]))",
                         "{{instance}}")], "reqps")

    d.row("Latency, all proxies")
    d.timeseries("Read latency: reads_origin", "Reads served by origin, as clients see them through the proxies.",
                 quantiles(P, f'{I},type="reads_origin"'), "s", w=8)
    d.timeseries("Read latency: reads_target", "Reads served by target, as clients see them through the proxies.",
                 quantiles(P, f'{I},type="reads_target"'), "s", w=8)
    d.timeseries("Write latency", "Writes as clients see them: the slower of the two clusters plus the proxy.",
                 quantiles(P, f'{I},type="writes"'), "s", w=8)

    d.row("Latency by instance")
    d.timeseries("reads_origin latency by instance", "Each proxy's read latency when origin serves reads.",
                 quantiles(P, f'{I},type="reads_origin"', "instance", "{{instance}}"), "s", w=8)
    d.timeseries("reads_target latency by instance", "Each proxy's read latency when target serves reads.",
                 quantiles(P, f'{I},type="reads_target"', "instance", "{{instance}}"), "s", w=8)
    d.timeseries("Write latency by instance", "Each proxy's write latency.",
                 quantiles(P, f'{I},type="writes"', "instance", "{{instance}}"), "s", w=8)

    d.row("Failures")
    d.timeseries("Failed writes by cluster",
                 "Writes that failed per second, by the cluster that failed them (origin, target or both); the "
                 "client got an error for each. failed_on=target: origin has the write, target does not.",
                 [target(f"sum by (failed_on) (rate(zdm_proxy_failed_writes_total{{{I}}}[{RATE}]))",
                         "failed on {{failed_on}}")], "reqps", w=8)
    d.timeseries("Failed reads by cluster", "Reads that failed per second on the cluster that served them.",
                 [target(f"sum by (cluster) (rate(zdm_proxy_failed_reads_total{{{I}}}[{RATE}]))",
                         "{{cluster}}")], "reqps", w=8)
    d.timeseries("Failed connections by cluster",
                 "Client connections the proxies could not open to a cluster, per second.",
                 [target(f"sum by (cluster) (rate(zdm_proxy_failed_connections_total{{{I}}}[{RATE}]))",
                         "{{cluster}}")], "short", w=8)
    d.timeseries("Failed writes by instance", "Failed writes per second through each proxy.",
                 [target(f"sum by (instance) (rate(zdm_proxy_failed_writes_total{{{I}}}[{RATE}]))",
                         "{{instance}}")], "reqps", w=8)
    d.stat("Failed writes since start", "Failed writes counted by the selected proxies since they started.",
           [target(f"sum by (failed_on) (zdm_proxy_failed_writes_total{{{I}}})", "{{failed_on}}")], w=8, h=8)
    d.stat("Failed reads since start", "Failed reads counted by the selected proxies since they started.",
           [target(f"sum by (cluster) (zdm_proxy_failed_reads_total{{{I}}})", "{{cluster}}")], w=8, h=8)
    d.timeseries("Errors the proxies answered themselves",
                 "Errors not forwarded from a cluster, per second, by reason (overloaded, server_error, "
                 "protocol_error, handshake_timeout, idle_timeout, unanswered_streams, handshake_evicted, "
                 "partial_frame_timeout, memory_ceiling); empty while none occur.",
                 [target(f"sum by (reason) (rate(zdm_proxy_client_errors_total{{{I}}}[{RATE}])) > 0", "{{reason}}")],
                 "reqps", w=24, h=6)

    d.row("Connections and requests in flight")
    d.timeseries("Client connections", "Client (driver) connections open on each proxy.",
                 [target(f"sum by (instance) (zdm_client_connections_total{{{I}}})", "{{instance}}")], w=8)
    d.timeseries("Cluster connections",
                 "Connections each proxy holds to origin, target and, for mirrored reads, the secondary.",
                 [target(f"sum by (instance) (zdm_{c}_connections_total{{{I}}})", f"{{{{instance}}}} {c}")
                  for c in ("origin", "target", "async")], w=8)
    d.timeseries("Requests in flight", "Requests waiting for their answer, by type, and mirrored reads in flight.",
                 [target(f"sum by (type) (zdm_proxy_inflight_requests_total{{{I}}})", "{{type}}"),
                  target(f"sum(zdm_async_inflight_requests_total{{{I}}})", "async")], w=8)
    d.timeseries("Stream ids in use", "CQL stream ids in use on the cluster connections (at most 2048 each).",
                 [target(f"sum by (instance) (zdm_{c}_used_stream_ids_total{{{I}}})", f"{{{{instance}}}} {c}")
                  for c in ("origin", "target", "async")], w=8)
    d.timeseries("Prepared statement cache", "Statements in each proxy's prepared cache.",
                 [target(f"sum by (instance) (zdm_pscache_entries_total{{{I}}})", "{{instance}}")], w=8)
    d.timeseries("Prepared statement cache misses and evictions",
                 "EXECUTEs of statements a proxy did not know (answered UNPREPARED; drivers prepare again), per "
                 "second, expected after a proxy restarts; and statements evicted from the bounded cache.",
                 [target(f"sum by (instance) (rate(zdm_pscache_miss_total{{{I}}}[{RATE}]))", "{{instance}} misses"),
                  target(f"sum by (instance) (rate(zdm_pscache_evictions_total{{{I}}}[{RATE}]))",
                         "{{instance}} evictions")],
                 "reqps", w=8)

    d.row("Per node: origin, target and mirrored (async)")
    for c, what in (("origin", "origin"), ("target", "target"), ("async", "the secondary, for mirrored reads")):
        d.timeseries(f"{c.capitalize()} requests by node", f"Requests the proxies sent to each node of {what}, per second.",
                     [target(f"sum by (node, type) (rate(zdm_{c}_request_duration_seconds_count{{{I}}}[{RATE}]))",
                             "{{node}} {{type}}")], "reqps", w=8)
    for c, what in (("origin", "origin"), ("target", "target"), ("async", "the secondary (mirrored reads)")):
        d.timeseries(f"{c.capitalize()} latency by node", f"p50 and p99 of requests to each node of {what}.",
                     [target(f"histogram_quantile({q}, sum by (node, le) (rate(zdm_{c}_request_duration_seconds_bucket"
                             f"{{{I}}}[{RATE}])))", f"{{{{node}}}} {name}") for q, name in (("0.5", "p50"), ("0.99", "p99"))],
                     "s", w=8)
    for c, what in (("origin", "origin"), ("target", "target"), ("async", "the secondary (mirrored reads)")):
        d.timeseries(f"{c.capitalize()} errors by node",
                     f"Error responses (and requests timed out in the proxy: client_timeout) from each node of {what}, "
                     "per second, by error; empty while nothing fails.",
                     [target(f"sum by (node, error) (rate(zdm_{c}_requests_failed_total{{{I}}}[{RATE}])) > 0",
                             "{{node}} {{error}}")], "reqps", w=8)
    d.timeseries("Connections by node", "Connections the proxies hold to each node.",
                 [target(f"sum by (node) (zdm_{c}_connections_total{{{I}}})", f"{c} {{{{node}}}}")
                  for c in ("origin", "target", "async")], w=12)
    d.timeseries("Failed connection attempts by node",
                 "Connections to a node that could not be opened, per second; empty while every node answers.",
                 [target(f"sum by (node) (rate(zdm_{c}_failed_connections_total{{{I}}}[{RATE}])) > 0", f"{c} {{{{node}}}}")
                  for c in ("origin", "target", "async")], w=12)
    return d


def migration():
    I = 'job="zdm_proxy",instance=~"$instance"'
    P = "zdm_proxy_request_duration_seconds"
    d = Dashboard("zdm-migration", "Migration",
                  "Where the migration stands: each proxy's primary cluster and read mode, dual-write "
                  "failures, target against origin, mirrored reads, firing alerts.",
                  ("instance", "Proxy", 'label_values(up{job="zdm_proxy"}, instance)'))
    d.row("Where each proxy is")
    d.stat("Proxies up", "Proxies Prometheus can scrape.",
           [target(f'sum(up{{job="zdm_proxy",instance=~"$instance"}})', "up")], w=4)
    d.stat("Proxies ready", "Proxies whose /health/readiness answers 200.",
           [target(f"sum(zdm_proxy_ready{{{I}}})", "ready")], w=4)
    d.stat("Primary cluster and read mode", "Each proxy's primary_cluster and read_mode, as it runs now.",
           [target(f"max by (instance, primary_cluster, read_mode) (zdm_proxy_info{{{I}}})",
                   "{{instance}}: primary {{primary_cluster}}, {{read_mode}}")], text_mode="name", w=10)
    d.stat("Version", "The zdm-proxy version each proxy runs.",
           [target(f"max by (instance, version) (zdm_proxy_info{{{I}}})", "{{instance}}: {{version}}")],
           text_mode="name", w=6)
    d.timeseries("Proxies in each mode",
                 "How many proxies run each primary cluster / read mode: a rolling update moves them one by one.",
                 [target(f"count by (primary_cluster, read_mode) (zdm_proxy_info{{{I}}})",
                         "primary {{primary_cluster}}, {{read_mode}}")])
    d.timeseries("Where reads are served",
                 "Reads per second served by origin and by target, and reads mirrored to the secondary.",
                 [target(f'sum by (type) (rate({P}_count{{{I},type=~"reads_origin|reads_target"}}[{RATE}]))', "{{type}}"),
                  target(f"sum(rate(zdm_async_request_duration_seconds_count{{{I}}}[{RATE}]))", "mirrored (async)")],
                 "reqps")

    d.row("Dual writes")
    d.timeseries("Dual-write failure ratio",
                 "Failed writes over all writes, by the cluster that failed them. Above 0, the clusters are "
                 "diverging (failed_on=target) or clients see errors (origin, both).",
                 [target(f"sum by (failed_on) (rate(zdm_proxy_failed_writes_total{{{I}}}[{RATE}])) / ignoring (failed_on) "
                         f'group_left sum(rate({P}_count{{{I},type="writes"}}[{RATE}]))', "failed on {{failed_on}}")],
                 "percentunit", w=8)
    d.timeseries("Target vs origin: write latency", "The same writes, measured on each cluster (p50, p99).",
                 [target(f"histogram_quantile({q}, sum by (le) (rate(zdm_{c}_request_duration_seconds_bucket"
                         f'{{{I},type="writes"}}[{RATE}])))', f"{c} {name}")
                  for c in ("origin", "target") for q, name in (("0.5", "p50"), ("0.99", "p99"))], "s", w=8)
    d.timeseries("Target vs origin: read latency",
                 "Reads on the primary's nodes and the mirrored reads on the secondary's (p50, p99).",
                 [target(f"histogram_quantile({q}, sum by (le) (rate(zdm_{c}_request_duration_seconds_bucket"
                         f'{{{I}{sel}}}[{RATE}])))', f"{label} {name}")
                  for c, sel, label in (("origin", ',type="reads"', "origin"), ("target", ',type="reads"', "target"),
                                        ("async", "", "mirrored"))
                  for q, name in (("0.5", "p50"), ("0.99", "p99"))], "s", w=8)

    d.row("Target protection")
    d.timeseries("Writes target is missing, by table",
                 "Writes that reached origin and not target, per second, by table: target disabled at runtime, "
                 "isolated by the circuit breaker, failing or too slow (target_failure_mode isolate). Each is in the "
                 "proxy's write journal until `zdm-deploy replay`.",
                 [target(f"sum by (keyspace, table) (rate(zdm_proxy_target_divergence_writes_total{{{I}}}[{RATE}])) > 0",
                         "{{keyspace}}.{{table}}")], "wps", w=8)
    d.timeseries("Write journal", "Bytes of each proxy's write journal on disk (replay frees them).",
                 [target(f"sum by (instance) (zdm_proxy_journal_bytes{{{I}}})", "{{instance}}")], "bytes", w=8)
    d.timeseries("Target switch and isolation",
                 "Per proxy: target enabled (1) or disabled at runtime (0); isolated by the circuit breaker (1); "
                 "journal full (1: writes target fails fail the client).",
                 [target(f"min by (instance) (zdm_target_enabled{{{I}}})", "{{instance}} enabled"),
                  target(f"max by (instance) (zdm_proxy_target_isolated{{{I}}})", "{{instance}} isolated"),
                  target(f"max by (instance) (zdm_proxy_journal_full{{{I}}})", "{{instance}} journal full")], w=8)

    d.row("Mirrored reads (DUAL_ASYNC_ON_SECONDARY)")
    d.timeseries("Mirrored read error ratio",
                 "Mirrored reads that failed on the secondary (errors and timeouts) over all mirrored reads. Clients "
                 "do not see these; after cutover they would.",
                 [target(f"sum(rate(zdm_async_requests_failed_total{{{I}}}[{RATE}])) / (sum(rate("
                         f"zdm_async_request_duration_seconds_count{{{I}}}[{RATE}])) + sum(rate(zdm_async_requests_failed_total"
                         f'{{{I},error="client_timeout"}}[{RATE}])))', "error ratio")], "percentunit", w=8)
    d.timeseries("Mirrored read errors by error", "Failed mirrored reads per second by error; empty while none fail.",
                 [target(f"sum by (error) (rate(zdm_async_requests_failed_total{{{I}}}[{RATE}])) > 0", "{{error}}")],
                 "reqps", w=8)
    d.timeseries("Mirrored reads in flight", "Mirrored reads waiting for the secondary, by proxy.",
                 [target(f"sum by (instance) (zdm_async_inflight_requests_total{{{I}}})", "{{instance}}")], w=8)
    d.timeseries("Mirrored reads that differ, by table (read_compare)",
                 "Mirrored reads whose rows on the secondary differ from the primary's, over all compared, by table "
                 "(read_compare: true). Above 0 the table is not ready for cutover; the proxy's log names the keys.",
                 [target(f"sum by (keyspace, table) (rate(zdm_proxy_read_mismatches_total{{{I}}}[{RATE}])) / "
                         f"sum by (keyspace, table) (rate(zdm_proxy_read_comparisons_total{{{I}}}[{RATE}]))",
                         "{{keyspace}}.{{table}}")], "percentunit", w=24, h=6)

    d.row("Alerts")
    d.timeseries("Firing alerts", "Alerts of monitoring/alerts firing now (Prometheus' ALERTS); empty while all is well.",
                 [target('count by (alertname, severity) (ALERTS{alertstate="firing"})', "{{alertname}} ({{severity}})")],
                 w=24, h=6)
    return d


def proxy_hosts():
    N = 'job="node",host=~"$host"'
    Z = 'job="zdm_proxy",host=~"$host"'
    d = Dashboard("zdm-proxy-hosts", "Proxy hosts",
                  "The machines the proxies run on (node exporter) and the zdm-proxy process itself.",
                  ("host", "Host", 'label_values(up{job=~"zdm_proxy|node"}, host)'))
    d.row("Hosts")
    d.timeseries("CPU busy", "Share of CPU time not idle, all cores.",
                 [target(f'100 * (1 - avg by (host) (rate(node_cpu_seconds_total{{{N},mode="idle"}}[{RATE}])))', "{{host}}")],
                 "percent", w=8)
    d.timeseries("Load per core", "1-minute load average divided by the number of cores.",
                 [target(f'avg by (host) (node_load1{{{N}}}) / count by (host) (node_cpu_seconds_total{{{N},mode="idle"}})',
                         "{{host}}")], w=8)
    d.timeseries("Memory used", "Memory not available to new programs.",
                 [target(f"1 - sum by (host) (node_memory_MemAvailable_bytes{{{N}}}) / sum by (host) "
                         f"(node_memory_MemTotal_bytes{{{N}}})", "{{host}}")], "percentunit", w=8)
    for way, metric in (("received", "receive"), ("sent", "transmit")):
        d.timeseries(f"Network {way}", f"Bytes per second {way} on each interface with traffic (loopback "
                     "included: clients, proxy and clusters on one host talk over it).",
                     [target(f"sum by (host, device) (rate(node_network_{metric}_bytes_total{{{N}}}[{RATE}])) > 0",
                             "{{host}} {{device}}")], "Bps", w=8)
    d.timeseries("TCP connections", "Established TCP connections on the host.",
                 [target(f"sum by (host) (node_netstat_Tcp_CurrEstab{{{N}}})", "{{host}}")], w=8)
    d.timeseries("File descriptors (host)", "File handles allocated on the host, of its maximum.",
                 [target(f"sum by (host) (node_filefd_allocated{{{N}}}) / sum by (host) (node_filefd_maximum{{{N}}})",
                         "{{host}}")], "percentunit", w=12)
    d.timeseries("Disk space used (/)", "Share of the root filesystem in use (the proxy logs there).",
                 [target(f'1 - sum by (host) (node_filesystem_avail_bytes{{{N},mountpoint="/"}}) / sum by (host) '
                         f'(node_filesystem_size_bytes{{{N},mountpoint="/"}})', "{{host}}")], "percentunit", w=12)
    d.row("zdm-proxy process")
    d.timeseries("Proxy CPU", "CPU time the zdm-proxy process uses, as a share of one core.",
                 [target(f"sum by (host) (rate(process_cpu_seconds_total{{{Z}}}[{RATE}]))", "{{host}}")],
                 "percentunit", w=8)
    d.timeseries("Proxy resident memory", "Resident memory of the zdm-proxy process.",
                 [target(f"sum by (host) (process_resident_memory_bytes{{{Z}}})", "{{host}}")], "bytes", w=8)
    d.timeseries("Proxy file descriptors", "Open file descriptors of the zdm-proxy process: client and "
                 "cluster connections among them.",
                 [target(f"sum by (host) (process_open_fds{{{Z}}})", "{{host}}")], w=8)
    d.stat("Proxy uptime", "Time since each zdm-proxy process started (a rolling update restarts it).",
           [target(f"time() - max by (host) (process_start_time_seconds{{{Z}}})", "{{host}}")], "s", w=12)
    d.stat("Proxy file descriptor limit", "The zdm-proxy process' limit on open files (RLIMIT_NOFILE): its "
           "client connections, two or three cluster connections each, must fit.",
           [target(f"max by (host) (process_max_fds{{{Z}}})", "{{host}}")], w=12)
    return d


def validate(d):
    """What Grafana 10 needs of each panel, and a layout without overlaps; returns problems."""
    problems, cells = [], {}
    for p in d["panels"]:
        where = f'{d["uid"]}: panel {p.get("id")} "{p.get("title")}"'
        g = p["gridPos"]
        if p["type"] not in ("row", "timeseries", "stat"):
            problems.append(f"{where}: type {p['type']}")
        if not (0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0):
            problems.append(f"{where}: gridPos {g}")
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                if (x, y) in cells:
                    problems.append(f"{where}: overlaps {cells[(x, y)]}")
                cells[(x, y)] = where
        if p["type"] != "row":
            if not p.get("targets") or p.get("datasource") != DATASOURCE:
                problems.append(f"{where}: no targets or another datasource")
            for t in p.get("targets", []):
                if not t.get("expr") or not t.get("refId") or "legendFormat" not in t:
                    problems.append(f"{where}: target {t}")
                var = "$" + d["templating"]["list"][0]["name"]
                if "ALERTS" not in t["expr"] and var not in t["expr"]:
                    problems.append(f"{where}: {t['refId']} ignores {var}")
    return problems


def main(argv):
    check = "--check" in argv
    stale = []
    for d in (zdm_proxy(), migration(), proxy_hosts()):
        problems = validate(d.json())
        for problem in problems:
            print(problem)
        if problems:
            return 1
        path = os.path.join(OUT, f"{d.uid}.json")
        text = json.dumps(d.json(), indent=2) + "\n"
        if check:
            try:
                current = open(path).read()
            except OSError:
                current = None
            if current != text:
                stale.append(path)
        else:
            os.makedirs(OUT, exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
            print(f"wrote {path}: {len([p for p in d.panels if p['type'] != 'row'])} panels")
    if stale:
        print("stale (run monitoring/grafana/generate_dashboards.py): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
