#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: health_probe
short_description: Wait for an Engine's /health and classify what it says
version_added: 0.1.0
description:
  - A read-only gate. Polls C(GET /health) until the required number of consecutive healthy answers,
    a terminal answer (C(MIGRATION_REQUIRED)) or the deadline; retries start fast and back off with jitter.
  - Healthy means HTTP 2xx B(and) C(status) equal to C(ok).
  - Every answer is classified as C(ok), C(unreachable), C(starting), C(draining), C(subsystem_failure),
    C(migration_required), C(external_only) (only C(llm_provider) failing, a cause outside the Engine) or C(unhealthy).
  - With O(samples), takes that many samples instead and returns their error rate and latency percentiles
    (for baselines).
  - Never reports a change; runs the same in check mode.
author:
  - engine_ops maintainers (@engine-ops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - engine_ops.lifecycle._engine.attributes
options:
  url:
    description: The Engine's health URL, for example C(http://127.0.0.1:8000/health).
    type: str
    required: true
  timeout:
    description: Seconds to wait for one answer; keep it short so a stalled connection is retried soon.
    type: float
    default: 2.0
  deadline:
    description: Seconds after which the probe gives up.
    type: float
    default: 60.0
  consecutive:
    description: Healthy answers in a row required.
    type: int
    default: 1
  backoff:
    description: First pause between attempts, in seconds; it doubles after each unhealthy answer.
    type: float
    default: 0.1
  backoff_max:
    description: Longest pause between attempts, in seconds.
    type: float
    default: 2.0
  jitter:
    description: Share of each pause that is randomised (0 to 1), so a fleet does not probe in lockstep.
    type: float
    default: 0.1
  keep_probing:
    description:
      - Keep probing through C(migration_required) answers until the deadline instead of stopping at the first.
    type: bool
    default: false
  samples:
    description: Take this many samples O(interval) apart instead of waiting for health.
    type: int
    default: 0
  interval:
    description: Seconds between samples.
    type: float
    default: 1.0
  fail_on_unhealthy:
    description: Fail when the Engine is not healthy by the deadline. Sampling never fails on what it measures.
    type: bool
    default: true
  validate_certs:
    description: Verify TLS certificates for C(https) URLs.
    type: bool
    default: true
attributes:
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Wait until the Engine is healthy three times in a row
  engine_ops.lifecycle.health_probe:
    url: http://127.0.0.1:8000/health
    consecutive: 3
    deadline: 120

- name: Take a baseline of 30 samples
  engine_ops.lifecycle.health_probe:
    url: http://127.0.0.1:8000/health
    samples: 30
    interval: 1
  register: baseline

- name: Read the classification without failing
  engine_ops.lifecycle.health_probe:
    url: http://127.0.0.1:8000/health
    deadline: 5
    fail_on_unhealthy: false
  register: health
"""

RETURN = r"""
healthy:
  description: Whether the required consecutive healthy answers were seen.
  returned: probe mode
  type: bool
classification:
  description: Classification of the last answer.
  returned: probe mode
  type: str
  sample: migration_required
reason:
  description: Why the last answer was classified so.
  returned: probe mode
  type: str
http_status:
  description: HTTP status of the last answer (null when unreachable).
  returned: probe mode
  type: int
body:
  description: The last JSON body.
  returned: probe mode
  type: dict
subsystems:
  description: Subsystem states of the last answer.
  returned: probe mode
  type: dict
  sample: {"database": "ok", "llm_provider": "ok", "asset_directory": "ok"}
failing:
  description: Names of the failing subsystems.
  returned: probe mode
  type: list
  elements: str
version:
  description: Version the Engine reported.
  returned: probe mode
  type: str
latency_ms:
  description: Latency of the last answer in milliseconds.
  returned: probe mode
  type: float
attempts:
  description: Number of requests made.
  returned: probe mode
  type: int
elapsed_ms:
  description: Time the probe took in milliseconds.
  returned: probe mode
  type: float
classifications_seen:
  description: How often each classification was seen.
  returned: probe mode
  type: dict
sampling:
  description: The samples with C(error_rate) and C(latency_ms) percentiles C(p50), C(p95), C(p99) and C(max).
  returned: sampling mode
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._module import http_get
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._judge.health import probe, sample, TERMINAL


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", required=True),
            timeout=dict(type="float", default=2.0),
            deadline=dict(type="float", default=60.0),
            consecutive=dict(type="int", default=1),
            backoff=dict(type="float", default=0.1),
            backoff_max=dict(type="float", default=2.0),
            jitter=dict(type="float", default=0.1),
            keep_probing=dict(type="bool", default=False),
            samples=dict(type="int", default=0),
            interval=dict(type="float", default=1.0),
            fail_on_unhealthy=dict(type="bool", default=True),
            validate_certs=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    for name in ("timeout", "deadline", "backoff", "backoff_max"):
        if p[name] <= 0:
            module.fail_json(msg="health_probe: %s must be greater than 0, got %s; nothing was probed" % (name, p[name]))
    if p["consecutive"] < 1 or p["samples"] < 0 or not 0 <= p["jitter"] <= 1:
        module.fail_json(msg="health_probe: consecutive must be >= 1, samples >= 0 and jitter within 0..1; "
                             "nothing was probed")
    if not p["url"].startswith(("http://", "https://")):
        module.fail_json(msg="health_probe: url %r must start with http:// or https://; nothing was probed" % p["url"])

    def get(url, timeout):
        return http_get(url, timeout, p["validate_certs"])
    if p["samples"]:
        module.exit_json(changed=False, sampling=sample(get, p["url"], p["samples"], p["interval"], p["timeout"]))
    result = probe(get, p["url"], timeout=p["timeout"], deadline=p["deadline"], consecutive=p["consecutive"],
                   backoff=p["backoff"], backoff_max=p["backoff_max"], jitter=p["jitter"],
                   stop_on=() if p["keep_probing"] else TERMINAL)
    if not result["healthy"] and p["fail_on_unhealthy"]:
        module.fail_json(msg="health_probe: %s is not healthy: %s (%s after %d attempts)"
                             % (p["url"], result["classification"], result["reason"], result["attempts"]),
                         changed=False, **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
