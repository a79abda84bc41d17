# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):

    # Every module of the collection runs fully in check mode on POSIX hosts; diff mode is per module.
    ATTRIBUTES = r"""
options: {}
attributes:
  check_mode:
    support: full
  platform:
    platforms: posix
"""

    # engine_lock and engine_checkpoint: files about one Engine in its host's state directory.
    STATE = r"""
options:
  container:
    description: The Engine's container name; it names the Engine's files in O(state_dir).
    type: str
    required: true
  state_dir:
    description: Directory on the Engine's host of its lock, checkpoints and image switch state.
    type: path
    default: /var/lib/engine_ops/state
"""

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

    BRAIN = r"""
options:
  engine:
    description:
      - Name of the Engine in the snapshot store (a directory name).
      - Defaults to the name of the container given by O(container) or found by O(compose_project).
    type: str
  store:
    description: Root of the snapshot store on the host; each Engine gets a 0700 directory below it.
    type: path
    default: /var/lib/engine_ops/snapshots
  backend:
    description: Where the brain lives.
    type: str
    choices: [sqlite, postgres]
    default: sqlite
  sqlite_path:
    description:
      - Host path of the SQLite brain.
      - Defaults to the file behind the Engine container's C(SQLITE_DB_PATH) (C(/data/brain.sqlite)) through its mounts.
    type: path
  pg_dsn:
    description: PostgreSQL connection string of the brain database (for example C(postgresql://user:pw@127.0.0.1/brain)).
    type: str
  pg_host:
    description: PostgreSQL host, when O(pg_dsn) is not given.
    type: str
    default: 127.0.0.1
  pg_port:
    description: PostgreSQL port.
    type: int
    default: 5432
  pg_user:
    description: PostgreSQL role; it must be able to create, rename and drop databases.
    type: str
  pg_password:
    description: Password of O(pg_user).
    type: str
  pg_database:
    description: The brain database.
    type: str
  pg_jobs:
    description: Parallel jobs for C(pg_dump) and C(pg_restore).
    type: int
    default: 2
"""
