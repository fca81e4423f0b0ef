"""Providers: the cloud side of a site (docs/providers.md). `aws` (boto3) and `openstack`
(openstacksdk) drive a real cloud; `lab` is the namespace lab; `generic` changes nothing in any cloud
(the manual way of docs/deploy.md). Only providers.aws imports boto3 and only providers.openstack
imports openstacksdk; both are loaded when a site uses them (the `[providers]` extra)."""
