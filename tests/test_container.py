"""The container image and the compose file, tested without a Docker engine.

The image's entrypoint (docker/entrypoint.sh) runs here as a plain command
with the image's own config (docker/authd.yaml) moved to a temporary folder
and loopback: it checks the config, becomes the server, answers over IPv4
and IPv6 on one port, passes its own health check, and stops on SIGTERM.
docker/compose.yaml is validated against the Compose Specification's JSON
schema (tests/data/compose-spec.json, vendored), and the configs it mounts
are checked by the programs that read them (authd --check-config, knotc
conf-check) with the key its tsig service would write.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import jsonschema
import pytest
import yaml

from authd.keys import parse_keys
from harness.peers import REPO_ROOT, free_port, require_binary

DOCKER = REPO_ROOT / "docker"
ENTRYPOINT = DOCKER / "entrypoint.sh"
SCHEMA = REPO_ROOT / "tests" / "data" / "compose-spec.json"
WAIT = 60.0  # seconds for the server to answer, or to exit (a loaded machine)
IMAGE_STATE = "/var/lib/authd"


def _env(config: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "AUTHD_CONFIG": str(config),
        "AUTHD_BIN": f"{sys.executable} -m authd",
    }


def _entrypoint(config: Path, *args: str, timeout: float = WAIT) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *args],
        env=_env(config),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _image_config(tmp: Path, port: int) -> Path:
    """docker/authd.yaml as the image has it, moved to *tmp* and loopback on *port*."""
    text = (DOCKER / "authd.yaml").read_text()
    assert "{address: 0.0.0.0, port: 5300}" in text and '{address: "::", port: 5300}' in text
    text = text.replace("address: 0.0.0.0, port: 5300", f"address: 127.0.0.1, port: {port}")
    text = text.replace('address: "::", port: 5300', f'address: "::1", port: {port}')
    text = text.replace(f"state_dir: {IMAGE_STATE}", f"state_dir: {tmp / 'state'}")
    shutil.copytree(REPO_ROOT / "zones", tmp / "zones")  # the image's /etc/authd/zones
    config = tmp / "authd.yaml"
    config.write_text(text)
    return config


def _dockerfile() -> str:
    return (DOCKER / "Dockerfile").read_text()


# -- the image --------------------------------------------------------------------------


def test_the_image_runs_unprivileged_with_a_state_volume_and_a_health_check() -> None:
    text = _dockerfile()
    image_config = yaml.safe_load((DOCKER / "authd.yaml").read_text())
    assert re.search(r"^USER authd$", text, re.M)
    assert f'VOLUME ["{IMAGE_STATE}"]' in text
    assert image_config["options"]["state_dir"] == IMAGE_STATE
    assert f"chown authd:authd {IMAGE_STATE}" in text  # the user owns its volume
    assert "COPY docker/entrypoint.sh /usr/local/bin/authd-entrypoint" in text
    assert 'ENTRYPOINT ["/usr/local/bin/authd-entrypoint"]' in text
    assert re.search(
        r'HEALTHCHECK .*\n\s+CMD \["/usr/local/bin/authd-entrypoint", "healthcheck"\]', text
    )
    assert "COPY docker/authd.yaml /etc/authd/authd.yaml" in text
    listen = {(x["address"], x["port"]) for x in image_config["listen"]}
    assert listen == {("0.0.0.0", 5300), ("::", 5300)}  # both families, one port


def test_the_entrypoint_serves_the_image_config_on_ipv4_and_ipv6(tmp_path: Path) -> None:
    port = free_port()
    config = _image_config(tmp_path, port)
    log = tmp_path / "authd.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["sh", str(ENTRYPOINT)], env=_env(config), stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait_answer("127.0.0.1", port, proc, log)
        for address in ("127.0.0.1", "::1"):
            for ask in (dns.query.udp, dns.query.tcp):
                q = dns.message.make_query("example.com.", "SOA")
                r = ask(q, address, port=port, timeout=5)
                assert r.rcode() == dns.rcode.NOERROR and r.answer, (address, ask)
        health = _entrypoint(config, "healthcheck")
        assert health.returncode == 0, health.stdout + health.stderr
        # exec: the shell became authd, so SIGTERM reaches the server itself.
        assert Path(f"/proc/{proc.pid}/cmdline").read_bytes().count(b"authd") >= 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=WAIT) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "config " in log.read_text() and "0 refused" in log.read_text()  # checked first
    down = _entrypoint(config, "healthcheck")
    assert down.returncode != 0, "no server: unhealthy"


def _wait_answer(address: str, port: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"entrypoint exited {proc.returncode}:\n{log.read_text()}")
        try:
            q = dns.message.make_query("example.com.", "SOA")
            dns.query.udp(q, address, port=port, timeout=0.5)
            return
        except (dns.exception.Timeout, OSError):
            time.sleep(0.1)
    raise AssertionError(f"no answer within {WAIT:g}s:\n{log.read_text()}")


def test_the_entrypoint_refuses_a_bad_config_before_serving(tmp_path: Path) -> None:
    port = free_port()
    config = _image_config(tmp_path, port)
    config.write_text(config.read_text().replace("log_format: text", "log_format: yaml"))
    done = _entrypoint(config)
    assert done.returncode == 1 and "options.log_format" in done.stderr, done.stderr


def test_the_entrypoint_runs_other_subcommands(tmp_path: Path) -> None:
    done = _entrypoint(tmp_path / "unused.yaml", "keygen", "x.example")
    assert done.returncode == 0 and 'key "x.example"' in done.stdout, done.stderr


def test_keygen_files_writes_one_key_once(tmp_path: Path) -> None:
    keys = tmp_path / "tsig"
    first = _entrypoint(tmp_path / "unused.yaml", "keygen-files", str(keys), "xfr.compose")
    assert first.returncode == 0, first.stderr
    bind_form = (keys / "xfr.compose.key").read_text()
    knot_form = (keys / "xfr.compose.knot.conf").read_text()
    (key,) = parse_keys(
        [{"name": "xfr.compose", "secret_file": str(keys / "xfr.compose.key")}]
    ).keys
    assert base64.b64encode(key.secret).decode() in knot_form  # the same key twice
    again = _entrypoint(tmp_path / "unused.yaml", "keygen-files", str(keys), "xfr.compose")
    assert again.returncode == 0 and "kept" in again.stdout
    assert (keys / "xfr.compose.key").read_text() == bind_form


# -- the compose file ------------------------------------------------------------------------


def _compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def test_compose_file_follows_the_compose_specification() -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    compose = _compose()
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []
    # The schema does refuse what is wrong: a misspelt service key.
    broken = json.loads(json.dumps(compose))
    broken["services"]["primary"]["enviroment"] = {}
    assert not validator.is_valid(broken)


def test_compose_wires_a_primary_and_two_secondaries() -> None:
    services = _compose()["services"]
    assert {"primary", "secondary", "knot", "tsig"} <= services.keys()
    assert services["knot"]["image"].startswith("cznic/knot")
    for name in ("primary", "secondary", "knot"):
        assert services[name]["depends_on"]["tsig"]["condition"] == (
            "service_completed_successfully"
        )
    for name in ("secondary", "knot"):
        assert services[name]["depends_on"]["primary"]["condition"] == "service_healthy"
    addresses = {
        n: s["networks"]["dns"]["ipv4_address"] for n, s in services.items() if n != "tsig"
    }
    primary = yaml.safe_load((DOCKER / "compose" / "primary.yaml").read_text())
    notified = {r["address"] for r in primary["zones"][0]["also_notify"]}
    assert notified == {addresses["secondary"], addresses["knot"]}
    secondary = yaml.safe_load((DOCKER / "compose" / "secondary.yaml").read_text())
    assert secondary["zones"][0]["primaries"][0]["address"] == addresses["primary"]
    knot_conf = (DOCKER / "compose" / "knot.conf").read_text()
    assert f"address: {addresses['primary']}@5300" in knot_conf
    # Wired by a catalog zone (RFC 9432): the primary generates it, both follow it.
    catalog = primary["zones"][0]
    assert catalog["catalog_role"] == "generate"
    members = [z["name"] for z in primary["zones"] if z.get("catalog_zone") == catalog["name"]]
    assert members == ["example.com"]
    assert secondary["zones"] == [secondary["zones"][0]]  # the catalog alone
    assert secondary["zones"][0]["catalog_role"] == "interpret"
    assert "domain: catalog.invalid\n    catalog-role: interpret" in knot_conf


@pytest.fixture()
def compose_keys(tmp_path: Path) -> Path:
    keys = tmp_path / "tsig"
    done = _entrypoint(tmp_path / "unused.yaml", "keygen-files", str(keys), "xfr.compose")
    assert done.returncode == 0, done.stderr
    return keys


@pytest.mark.parametrize("name", ["primary", "secondary"])
def test_compose_authd_configs_pass_check_config(
    tmp_path: Path, compose_keys: Path, name: str
) -> None:
    text = (DOCKER / "compose" / f"{name}.yaml").read_text()
    text = text.replace("/tsig/", f"{compose_keys}/")
    text = text.replace("/etc/authd/zones/", f"{REPO_ROOT / 'zones'}/")
    text = text.replace(f"state_dir: {IMAGE_STATE}", f"state_dir: {tmp_path / 'state'}")
    config = tmp_path / f"{name}.yaml"
    config.write_text(text)
    done = subprocess.run(
        [sys.executable, "-m", "authd", "serve", "-c", str(config), "--check-config"],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert done.returncode == 0, done.stderr
    assert "0 refused" in done.stderr


def test_compose_knot_config_passes_conf_check(tmp_path: Path, compose_keys: Path) -> None:
    knotc = require_binary("knotc")
    text = (DOCKER / "compose" / "knot.conf").read_text()
    text = text.replace("/tsig/", f"{compose_keys}/").replace("/storage", str(tmp_path))
    config = tmp_path / "knot.conf"
    config.write_text(text)
    done = subprocess.run(
        [knotc, "-c", str(config), "conf-check"], capture_output=True, text=True, timeout=WAIT
    )
    assert done.returncode == 0, done.stdout + done.stderr
