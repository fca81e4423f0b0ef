"""`cloudgw gateway bootstrap`: user-data that installs cloudgw and joins with a fresh one-time token
(CA pinned), and --launch through the site's provider (moto RunInstances, the fake Nova)."""

from __future__ import annotations

import base64

import yaml

from cloudgw.agent.keys import generate_private_key, public_key_of
from cloudgw.model.tokens import parse_token
from cloudgw.providers.userdata import agent_unit, user_data
from tests.clouds.aws_world import make_aws_world
from tests.clouds.openstack_fake import make_openstack_world
from tests.clouds.test_two_clouds import cloudgw
from tests.controllers import start_controller
from tests.helpers import wait_for


def test_user_data_is_cloud_config_with_a_private_env_file_and_the_unit():
    text = user_data("public-gw", "public", "https://203.0.113.5:8443", "cgwj_x.y.z", package="cloudgw==0.1.0")
    assert text.startswith("#cloud-config\n")
    config = yaml.safe_load(text)
    env, unit = config["write_files"]
    assert env["path"] == "/etc/cloudgw/public-gw.env" and env["permissions"] == "0600"
    assert env["content"] == "CLOUDGW_CONTROLLER=https://203.0.113.5:8443\nCLOUDGW_JOIN_TOKEN=cgwj_x.y.z\n"
    assert unit["content"] == agent_unit() and "ExecStart=/opt/cloudgw/.venv/bin/cloudgw agent run" in unit["content"]
    assert ["/opt/cloudgw/.venv/bin/pip", "install", "--quiet", "cloudgw==0.1.0"] in config["runcmd"]
    assert config["runcmd"][-1] == ["systemctl", "enable", "--now", "cloudgw-agent@public-gw"]


def _controller(tmp_path, **settings):
    controller = start_controller(tmp_path / "c", f"sqlite:///{tmp_path}/c.db", provider_interval=1, **settings)
    env = {
        "PATH": "/usr/bin:/bin",
        "CLOUDGW_URL": controller.url,
        "CLOUDGW_TOKEN": controller.admin_token,
        "CLOUDGW_CA": controller.ca,
        "CLOUDGW_CONFIG": str(tmp_path / "cli.yaml"),
        "COLUMNS": "200",
    }
    return controller, env


def one_site(admin, site: str, provider: str, block: dict, pool: str, lan_address: str) -> None:
    """One site with a cloud block, its pool and its gateway (not launched yet)."""
    admin.json(
        "PUT",
        "/api/v1/topology",
        json={
            "sites": [{"name": site, "provider": provider, provider: block}],
            "networks": [{"name": "lab", "cidr": "192.168.1.0/24"}],
            "pools": [{"network": "lab", "site": site, "range": pool}],
            "gateways": [{"name": f"{site}-gw", "site": site, "lan_addresses": [lan_address]}],
            "connections": [],
        },
    )


def test_bootstrap_token_joins_once_with_the_pinned_ca(tmp_path):
    controller, env = _controller(tmp_path)
    try:
        with controller.client() as admin:
            admin.json(
                "PUT",
                "/api/v1/topology",
                json={
                    "sites": [{"name": "edge"}],
                    "networks": [],
                    "pools": [],
                    "gateways": [{"name": "edge-gw", "site": "edge"}],
                    "connections": [],
                },
            )
        out = cloudgw(env, "gateway", "bootstrap", "edge-gw", "-f", str(tmp_path / "ud.yaml"))
        assert out.returncode == 0, out.stderr
        assert (tmp_path / "ud.yaml").stat().st_mode & 0o777 == 0o600
        config = yaml.safe_load((tmp_path / "ud.yaml").read_text())
        token = config["write_files"][0]["content"].split("CLOUDGW_JOIN_TOKEN=")[1].strip()
        assert parse_token(token).ca_fingerprint == controller.ca_fingerprint
        key = public_key_of(generate_private_key())
        with controller.agent(token) as joiner:
            assert joiner.join(key).gateway == "edge-gw"
        refused = cloudgw(env, "gateway", "bootstrap", "edge-gw", "--launch", "--image", "ami-1", "--size", "m5.large")
        assert refused.returncode == 1
        assert "--public-url" in refused.stderr and "no aws or openstack block" in refused.stderr
        missing = cloudgw(env, "gateway", "bootstrap", "nope")
        assert missing.returncode == 1 and "nope" in missing.stderr
    finally:
        controller.stop()


def test_launch_on_aws_records_the_eni_and_the_reconciler_takes_over(aws, tmp_path):
    world = make_aws_world(aws.ec2)  # the account's only instance so far: an unrelated gateway machine
    controller, env = _controller(tmp_path, public_url="https://203.0.113.5:8443")
    try:
        with controller.client() as admin:
            one_site(
                admin,
                "public",
                "aws",
                {"region": "eu-west-1", "subnet": world.subnet, "endpoint_url": aws.url},
                "192.168.1.11-192.168.1.20",
                "192.168.1.250",
            )
            # before the launch: refused with the way out
            wait_for(
                lambda: {p["site"]: p for p in admin.json("GET", "/api/v1/providers")}.get("public"),
                20,
                what="a first pass",
            )
            (row,) = admin.json("GET", "/api/v1/providers")
            assert (
                row["state"] == "refused"
                and "gateway bootstrap GATEWAY --launch" in row["error"]
                and "no gateway ENI" in row["error"]
            )
        out = cloudgw(
            env, "gateway", "bootstrap", "public-gw", "--launch", "--image", "ami-12c6146b", "--size", "m5.large"
        )
        assert out.returncode == 0, out.stderr
        assert "launched i-" in out.stderr and out.stdout.startswith("#cloud-config")
        reservations = aws.ec2.describe_instances(Filters=[{"Name": "tag:cloudgw:site", "Values": ["public"]}])
        (instance,) = [i for r in reservations["Reservations"] for i in r["Instances"]]
        assert instance["PrivateIpAddress"] == "192.168.1.250" and instance["SubnetId"] == world.subnet
        given = aws.ec2.describe_instance_attribute(InstanceId=instance["InstanceId"], Attribute="userData")
        assert base64.b64decode(given["UserData"]["Value"]).decode() == out.stdout
        eni = instance["NetworkInterfaces"][0]["NetworkInterfaceId"]
        with controller.client() as admin:
            assert admin.get("sites", "public")["aws"]["gateway_eni"] == eni
            wait_for(
                lambda: [p["state"] for p in admin.json("GET", "/api/v1/providers")] == ["ok"], 20, what="the cloud ok"
            )
        assert world.eni(eni)["SourceDestCheck"] is False
    finally:
        controller.stop()


def test_launch_on_openstack_makes_the_port_then_the_server(openstack_cloud, tmp_path):
    fake = openstack_cloud
    world = make_openstack_world(fake)
    controller, env = _controller(tmp_path, public_url="https://203.0.113.5:8443")
    try:
        with controller.client() as admin:
            one_site(
                admin,
                "private",
                "openstack",
                {"cloud": "private-cloud", "subnet": "tenant-subnet"},
                "192.168.1.4-192.168.1.10",
                "192.168.1.252",
            )
        out = cloudgw(
            env,
            "gateway",
            "bootstrap",
            "private-gw",
            "--launch",
            "--image",
            "debian-12",
            "--size",
            "m1.small",
            "--key-name",
            "admin",
        )
        assert out.returncode == 0, out.stderr
        (server,) = fake.servers.values()
        assert server["name"] == "private-gw" and server["key_name"] == "admin"
        assert base64.b64decode(server["user_data"]).decode() == out.stdout
        (port_id,) = [n["port"] for n in server["networks"]]
        port = fake.get("ports", port_id)
        assert port["fixed_ips"][0]["ip_address"] == "192.168.1.252" and port["device_id"] == server["id"]
        assert port["description"].startswith("cloudgw:")
        with controller.client() as admin:
            assert admin.get("sites", "private")["openstack"]["gateway_port"] == port_id
            wait_for(
                lambda: [p["state"] for p in admin.json("GET", "/api/v1/providers")] == ["ok"], 20, what="the cloud ok"
            )
        assert world["port"]["id"] != port_id
    finally:
        controller.stop()
