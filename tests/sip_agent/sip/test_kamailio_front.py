"""docs/security.md "Putting kamailio in front", run: kamailio's auth_db + permissions admit callers, the agent
behind accepts only what comes from kamailio's address (``--allow``).

Loopback has many addresses: kamailio and the agent listen on 127.0.0.1, and
a caller that goes around the proxy binds 127.0.0.2, which the agent's
``--allow 127.0.0.1/32`` refuses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.sip_agent.conftest import HOST, free_port, only_call
from tests.sip_agent.kamailio import kamailio_with, module_dir

pytestmark = [pytest.mark.sip, pytest.mark.timeout(120)]

# The sketch of docs/security.md with test addresses (keep the two alike).
FRONT_CFG = """#!KAMAILIO
debug=2
log_stderror=yes
children=1
tcp_children=1
auto_aliases=no
listen=udp:{host}:{port}
listen=tcp:{host}:{port}
alias="{host}:{port}"
mpath="{modules}"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "db_text.so"
loadmodule "auth.so"
loadmodule "auth_db.so"
loadmodule "permissions.so"
loadmodule "pike.so"
modparam("auth", "algorithm", "SHA-256")
modparam("auth_db", "db_url", "text://{db}")
modparam("auth_db", "calculate_ha1", 1)
modparam("auth_db", "password_column", "password")
modparam("auth_db", "use_domain", 0)
modparam("permissions", "db_url", "text://{db}")
modparam("pike", "sampling_time_unit", 2)
modparam("pike", "reqs_density_per_unit", 30)

request_route {{
    if (!pike_check_req()) {{ exit; }}
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) t_relay(); exit; }}
    if (has_totag()) {{ if (loose_route()) {{ t_relay(); }} exit; }}
    if (!allow_source_address("1")) {{ sl_send_reply("403", "Forbidden"); exit; }}
    if (is_method("INVITE")) {{
        if (!auth_check("$fd", "subscriber", "1")) {{ auth_challenge("$fd", "0"); exit; }}
        consume_credentials();
        record_route();
        $du = "sip:{host}:{agent}";
        t_relay();
        exit;
    }}
    sl_send_reply("405", "Method Not Allowed");
}}
"""
# db_text tables (header line: column(type[,null]); rows colon-separated)
TABLES = {
    "version": "table_name(string) table_version(int)\nsubscriber:7\naddress:6\ntrusted:6\n",
    "subscriber": "id(int,auto) username(string) domain(string) password(string) ha1(string,null) "
                  "ha1b(string,null)\n1:alice:127.0.0.1:alice-front::\n",
    "address": "id(int,auto) grp(int) ip_addr(string) mask(int) port(int) tag(string,null)\n1:1:127.0.0.1:32:0:\n",
    "trusted": "id(int,auto) src_ip(string) proto(string) from_pattern(string,null) ruri_pattern(string,null) "
               "tag(string,null) priority(int)\n",
}


@pytest.fixture
def front(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """(kamailio's port, the agent's port behind it) with kamailio running."""
    port, agent_port, db = free_port(), free_port(), tmp_path / "db"
    db.mkdir()
    for name, text in TABLES.items():
        (db / name).write_text(text)
    config = FRONT_CFG.format(host=HOST, port=port, agent=agent_port, db=db, modules=module_dir())
    with kamailio_with(tmp_path / "kamailio", config, port):
        yield port, agent_port


def test_kamailio_authenticates_and_the_agent_takes_only_its_calls(agent, front: tuple[int, int]) -> None:
    port, agent_port = front
    answerer = agent("answer", "answer", "--port", str(agent_port), "--allow", "127.0.0.1/32", "--calls", "1",
                     "--timeout", "30", "--engine", "raw")
    answerer.wait_for("waiting for calls")
    # no credentials: kamailio challenges (407) and the caller gives up with the hint
    rc, report = agent("anon", "call", f"sip:bob@{HOST}:{port}", "--engine", "raw", "--duration", "1").finish()
    assert rc == 1 and only_call(report)["status_code"] == 407, report
    assert "give --user and --password" in only_call(report)["message"]
    # around the proxy, from another address: the agent's --allow refuses it
    rc, report = agent("direct", "call", f"sip:bob@{HOST}:{agent_port}", "--bind", "127.0.0.2", "--engine", "raw",
                       "--duration", "1").finish()
    assert rc == 1 and only_call(report)["status_code"] == 403, report
    # through the proxy with the password: admitted by kamailio, answered by the agent
    rc, report = agent("alice", "call", f"sip:bob@{HOST}:{port}", "--user", "alice", "--password", "alice-front",
                       "--engine", "raw", "--duration", "1.5").finish()
    assert rc == 0 and only_call(report)["connected"] and only_call(report)["codec"] == "LargeSC/24000", report
    rc_a, answer_report = answerer.finish()
    assert rc_a == 0 and answer_report["refused"] == {"403": 1}, answer_report
    assert "source 127.0.0.2 is not in --allow" in answerer.text()
