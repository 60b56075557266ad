#!/usr/bin/python3
"""Collects seeds for the text harnesses from the repository's own files.

Usage: /usr/bin/python3 tests/fuzz/collect_text_seeds.py [CORPUS_DIR]

Writes, under CORPUS_DIR (default tests/fuzz/corpus), files named by the SHA-1 of their bytes:
  config/          a file with every key the proxy knows (values as ZDM's defaults), the
                   string literals of tests/unit/proxy/test_config.cpp
  inventory_ini/   inventory/*.ini, string literals of tests/unit/deployer/test_inventory.cpp
  inventory_yaml/  YAML inventories from the same tests, the example inventory as YAML
  vars/            inventory/vars/*.yml, playbooks/*.yml, string literals of the vars, playbook,
                   plan and executor tests, -e arguments
  template/        playbooks/templates/*.j2, playbooks/*.yml, string literals of the template tests
  classifier/      CQL statements in the unit tests and the driver tests
"""
import glob
import hashlib
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus")
count = {}


def add(harness, data):
    if isinstance(data, str):
        data = data.encode()
    if not data or len(data) > 16384:
        return
    d = os.path.join(OUT, harness)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, hashlib.sha1(data).hexdigest()[:16])
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.write(data)
        count[harness] = count.get(harness, 0) + 1


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def cpp_literals(path):
    """String literals of a C++ file: raw R"(...)" ones, and runs of adjacent "..." ones joined."""
    text = read(path)
    out = [m.group(1) for m in re.finditer(r'R"\((.*?)\)"', text, re.S)]
    text = re.sub(r'R"\(.*?\)"', "", text, flags=re.S)
    for run in re.finditer(r'(?:"(?:[^"\\\n]|\\.)*"\s*)+', text):
        parts = re.findall(r'"((?:[^"\\\n]|\\.)*)"', run.group(0))
        s = "".join(parts)
        try:
            s = s.encode("latin-1", "backslashreplace").decode("unicode_escape")
        except UnicodeDecodeError:
            continue
        out.append(s)
    return [s for s in out if len(s) >= 3]


def config_seeds():
    src = read("proxy/config.cpp")
    keys = re.findall(r'(?:str|num|flag|list|buckets|only_default)\(\s*"([a-z_0-9]+)"', src)
    keys += re.findall(r't\["([a-z_0-9]+)"\]', src)
    values = {"primary_cluster": "ORIGIN", "system_queries_mode": "ORIGIN",
              "read_mode": "PRIMARY_ONLY", "log_level": "INFO",
              "control_conn_max_protocol_version": "DseV2", "blocked_protocol_versions": "",
              "proxy_topology_addresses": "127.0.1.1,127.0.1.2,127.0.1.3",
              "heartbeat_retry_backoff_factor": "2",
              "origin_contact_points": "127.0.2.1,127.0.2.2", "target_contact_points": "127.0.3.1"}
    values.update(re.findall(r'only_default\(\s*"([a-z_0-9]+)",\s*"([^"]*)"', src))
    lines = []
    for k in dict.fromkeys(keys):
        if k in values:
            v = values[k] or '""'
        elif k.endswith("_ms") and "buckets" not in k:
            v = "1000"
        elif "buckets" in k:
            v = "[1, 4, 7, 10, 25, 40, 60, 80, 100, 150, 250, 500, 1000, 2500, 5000]"
        elif k.endswith(("_port",)):
            v = "9042"
        elif k.startswith(("proxy_max", "proxy_topology_index", "proxy_worker", "heartbeat_failure",
                           "proxy_topology_num")):
            v = "1"
        elif k.endswith(("_enabled", "_verify_hostname", "_assignment", "_auth", "_origin",
                         "_functions")):
            v = "false"
        elif "size" in k:
            v = "4096"
        elif k.endswith("_workers"):
            v = "-1"
        elif k == "tracing_request_id_key":
            v = "request-id"
        elif k == "tracing_rate_limit":
            v = "0"
        else:
            v = '""'
        lines.append(f"{k}: {v}")
    add("config", "\n".join(lines) + "\n")
    add("config", "origin_contact_points: 127.0.2.1\ntarget_contact_points: [127.0.3.1, 127.0.3.2]\n"
                  "proxy_listen_address: 127.0.1.1\nproxy_worker_threads: 2\n"
                  "read_mode: DUAL_ASYNC_ON_SECONDARY\norigin_username: cassandra\n"
                  "origin_password: cassandra\n")
    for s in cpp_literals("tests/unit/proxy/test_config.cpp"):
        if ":" in s:
            add("config", s)


def inventory_seeds():
    for p in glob.glob(os.path.join(ROOT, "inventory", "*.ini")):
        add("inventory_ini", read(p))
    for s in cpp_literals("tests/unit/deployer/test_inventory.cpp"):
        if "[" in s or "=" in s:
            add("inventory_ini", s)
        if ":" in s and "[" not in s.split("\n")[0]:
            add("inventory_yaml", s)
    add("inventory_yaml", """all:
  vars:
    ansible_user: ubuntu
    ansible_ssh_private_key_file: ~/.ssh/zdm_deploy_key
  children:
    proxies:
      hosts:
        proxy1: {ansible_host: 172.18.10.137}
        proxy2: {ansible_host: 172.18.11.25, ansible_port: 2222}
        proxy3:
          ansible_host: 172.18.12.41
          zdm_proxy_home_dir: /srv/zdm
      vars:
        origin_contact_points: 10.0.1.1,10.0.1.2,10.0.1.3
        target_contact_points: [10.0.2.1, 10.0.2.2]
    monitoring:
      hosts:
        monitor1:
          ansible_host: 172.18.100.128
ungrouped:
  hosts:
    lonely:
""")


def vars_and_template_seeds():
    for p in glob.glob(os.path.join(ROOT, "inventory", "vars", "*.yml")):
        add("vars", read(p))
        add("template", read(p))
    for p in glob.glob(os.path.join(ROOT, "playbooks", "*.yml")):
        add("vars", read(p))
        add("template", read(p))
    for p in glob.glob(os.path.join(ROOT, "playbooks", "templates", "*.j2")):
        add("template", read(p))
    for test in ("vars", "playbook", "plan", "executor"):
        for s in cpp_literals(f"tests/unit/deployer/test_{test}.cpp"):
            add("vars", s)
            if "{{" in s or "{%" in s:
                add("template", s)
    for s in cpp_literals("tests/unit/deployer/test_template.cpp"):
        add("template", s)
    for arg in ("zdm_proxy_listen_port=9043 read_mode='DUAL_ASYNC_ON_SECONDARY'",
                '{"primary_cluster": "TARGET", "zdm_releases_to_keep": 3}',
                "{primary_cluster: TARGET, list: [1, 2.5, yes, ~]}",
                'k="v w" x=1'):
        add("vars", arg)


def classifier_seeds():
    pattern = re.compile(r"^\s*(?:SELECT|INSERT|UPDATE|DELETE|BEGIN|USE|CREATE|ALTER|DROP|TRUNCATE|"
                         r"GRANT|REVOKE|LIST)\b", re.I)
    for path in glob.glob(os.path.join(ROOT, "tests", "unit", "**", "*.cpp"), recursive=True):
        for s in cpp_literals(os.path.relpath(path, ROOT)):
            if pattern.match(s) or s.lstrip().startswith(("--", "/*", "//")):
                add("classifier", s)
    for path in glob.glob(os.path.join(ROOT, "tests", "drivers", "*.py")) + \
            glob.glob(os.path.join(ROOT, "tests", "cluster", "*.py")):
        for m in re.finditer(r'"((?:SELECT|INSERT|UPDATE|DELETE|BEGIN|CREATE|ALTER|DROP|USE)[^"\n]*)"',
                             read(os.path.relpath(path, ROOT)), re.I):
            add("classifier", m.group(1))


config_seeds()
inventory_seeds()
vars_and_template_seeds()
classifier_seeds()
print("collect: new seeds " + ", ".join(f"{k} {v}" for k, v in sorted(count.items())))
