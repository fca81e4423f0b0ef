from cloudgw.dataplane.conntrack import parse

SNAT = (
    "tcp      6 117 TIME_WAIT src=192.168.1.1 dst=198.51.100.10 sport=52658 dport=80 src=198.51.100.10 "
    "dst=10.100.0.2 sport=80 dport=52658 [ASSURED] mark=0 use=1"
)
DNAT = (
    "tcp      6 431999 ESTABLISHED src=198.51.100.10 dst=10.101.0.2 sport=40000 dport=8080 src=192.168.1.11 "
    "dst=198.51.100.10 sport=80 dport=40000 [ASSURED] mark=0 use=1"
)
UDP = (
    "udp      17 29 src=192.168.1.1 dst=198.51.100.10 sport=5000 dport=7 [UNREPLIED] src=198.51.100.10 "
    "dst=10.100.0.2 sport=7 dport=5000 mark=0 use=1"
)
NONE = (
    "icmp     1 29 src=192.168.1.254 dst=192.168.1.253 type=8 code=0 id=7 src=192.168.1.253 dst=192.168.1.254 "
    "type=0 code=0 id=7 mark=0 use=1"
)


def test_snat_session():
    session = parse(SNAT, "snat")
    assert (session.protocol, session.state) == ("tcp", "TIME_WAIT")
    assert (session.source, session.destination, session.translated) == (
        "192.168.1.1:52658",
        "198.51.100.10:80",
        "10.100.0.2:52658",
    )


def test_dnat_session_shows_the_vm():
    session = parse(DNAT, "dnat")
    assert session.translated == "192.168.1.11:80" and session.destination == "10.101.0.2:8080"


def test_udp_has_no_state():
    assert parse(UDP, "snat").state == ""


def test_untranslated_entries_are_not_sessions():
    assert parse(NONE, "snat") is None and parse(NONE, "dnat") is None
    assert parse("garbage", "snat") is None
