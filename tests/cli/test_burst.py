"""`cloudgw burst policy` through the real API: options and a file, partial updates that keep a
block's other fields, refusals that name the field."""

from __future__ import annotations

from tests.contract.world import make_world


def test_policy_add_list_show_update_delete(cli, controller, uid, tmp_path):
    with controller.client() as api:
        make_world(api, uid, provider_b="lab", gateways=True, connect=True)
    pool = f"a-{uid}-n-{uid}"
    script = tmp_path / "user-data.sh"
    script.write_text("#!/bin/sh\necho hello\n")
    added = cli(
        "burst", "policy", "add", f"web-{uid}", "--network", f"n-{uid}", "--site", f"b-{uid}",
        "--signal-kind", "pool", "--signal-pool", pool, "--out-above", "0.8", "--in-below", "0.3",
        "--max", "6", "--image", "lab-vm", "--size", "small", "--user-data", str(script),
    )  # fmt: skip
    assert added.code == 0 and f"burst policy 'web-{uid}' created" in added.out, added.err
    listed = cli("burst", "policy", "list", "--site", f"b-{uid}")
    assert f"web-{uid}" in listed.out and f"pool: {pool}" in listed.out and "0-6 (step 1)" in listed.out
    shown = cli("burst", "policy", "show", f"web-{uid}", "-o", "json").json()
    assert shown["template"] == {
        "image": "lab-vm",
        "size": "small",
        "key_name": None,
        "user_data": "#!/bin/sh\necho hello\n",
    }
    # a template option keeps the template's other fields; a number changes alone
    assert cli("burst", "policy", "update", f"web-{uid}", "--size", "large", "--cooldown", "600").code == 0
    shown = cli("burst", "policy", "show", f"web-{uid}", "-o", "json").json()
    assert shown["template"]["size"] == "large" and shown["template"]["image"] == "lab-vm" and shown["cooldown"] == 600
    # from a file, with an option on top
    policy = tmp_path / "api.yaml"
    policy.write_text(
        f"network: n-{uid}\nsite: b-{uid}\nsignal: {{kind: http, url: 'http://127.0.0.1:9/load'}}\n"
        "scale_out_above: 100\nscale_in_below: 20\nmax_vms: 3\ntemplate: {image: lab-vm, size: small}\n"
    )
    assert cli("burst", "policy", "add", f"api-{uid}", "-f", str(policy), "--max", "4").code == 0
    assert cli("burst", "policy", "show", f"api-{uid}", "-o", "json").json()["max_vms"] == 4
    refused = cli("burst", "policy", "update", f"api-{uid}", "--in-below", "200")
    assert refused.code == 1 and "scale_in_below" in refused.err and "hysteresis" in refused.err
    assert cli("burst", "policy", "update", f"api-{uid}").code == 2  # nothing to update
    assert cli("burst", "policy", "delete", f"api-{uid}", "--yes").code == 0
    assert f"api-{uid}" not in cli("burst", "policy", "list", "-q", uid).out


def test_status_and_history_show_what_the_loop_decided(cli, controller, uid):
    from tests.helpers import wait_for

    with controller.client() as api:
        make_world(api, uid, provider_b="lab", gateways=True, connect=True)
    pool = f"a-{uid}-n-{uid}"
    assert cli(
        "burst", "policy", "add", f"st-{uid}", "--network", f"n-{uid}", "--site", f"b-{uid}",
        "--signal-kind", "pool", "--signal-pool", pool, "--out-above", "0.8", "--in-below", "0.3",
        "--max", "2", "--image", "lab-vm", "--size", "small",
    ).code == 0  # fmt: skip
    # the controller's own loop (every 5 s) reads the empty private pool: demand 0, nothing to remove
    status = wait_for(
        lambda: (s := cli("burst", "status", f"st-{uid}", "-o", "json").json())["checked_at"] and s,
        30,
        what="the loop's first pass",
    )
    assert status["demand"] == 0 and "holding at 0" in status["reason"] and status["vms"] == []
    table = cli("burst", "status", f"st-{uid}")
    assert f"st-{uid}: demand 0.00;" in table.out
    history = cli("burst", "history", f"st-{uid}", "-o", "json").json()
    assert history and history[0]["reason"].startswith("demand 0.00 < 0.3") and history[0]["change"] == 0
    assert cli("burst", "history", f"nope-{uid}").code == 1
