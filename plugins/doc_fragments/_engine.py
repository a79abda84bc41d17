# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):

    DOCKER = r"""
options:
  docker_host:
    description:
      - Docker daemon to talk to, for example C(unix:///var/run/docker.sock).
      - Defaults to E(DOCKER_HOST), else the local socket.
    type: str
    aliases: [docker_url]
  docker_timeout:
    description: Seconds to wait for one Docker API call.
    type: int
    default: 60
requirements:
  - docker (Python Docker SDK) >= 7.0
"""

    ENGINE = r"""
options:
  container:
    description:
      - Name or ID of the Engine container.
      - Exactly one of O(container) and O(compose_project) is required.
    type: str
    aliases: [name]
  compose_project:
    description: Find the Engine by its docker compose project label (C(com.docker.compose.project)).
    type: str
  compose_service:
    description: With O(compose_project), the compose service of the Engine.
    type: str
    default: engine
"""
