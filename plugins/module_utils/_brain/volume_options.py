# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options of the cloud volume backends (ebs, gcp_disk), importable without any cloud library."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

VOLUME_BACKENDS = ("ebs", "gcp_disk")

VOLUME_OPTIONS = dict(
    instance_id=dict(type="str"),
    device=dict(type="str"),
    device_path=dict(type="str"),
    volume_id=dict(type="str"),
    zone=dict(type="str"),
    consistency=dict(type="str", choices=["freeze", "drain"], default="freeze"),
    freeze_timeout=dict(type="int", default=30),
    snapshot_timeout=dict(type="int"),
    volume_timeout=dict(type="int", default=600),
    gcp_project=dict(type="str"),
    gcp_zone=dict(type="str"),
    gcp_endpoint=dict(type="str"),
    gcp_request_timeout=dict(type="float", default=60),
    gcp_auth_kind=dict(type="str", choices=["application", "serviceaccount", "none"], default="application"),
    gcp_credentials_file=dict(type="path"),
    gcp_service_account_contents=dict(type="str", no_log=True),
)
