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
      - Defaults to E(DOCKER_HOST), else the local socket. C(unix://) and C(tcp://) daemons are supported; for
        C(tcp://) the environment means what it means to the docker CLI. E(DOCKER_TLS) (any value) turns TLS on.
        E(DOCKER_TLS_VERIFY) (any value, even C(0)) turns TLS on and verifies the daemon against C(ca.pem).
        E(DOCKER_CERT_PATH) says where C(ca.pem), C(cert.pem) and C(key.pem) are (default C(~/.docker)).
      - The API version is negotiated as the docker CLI does. It is the newest both the daemon (its C(/version))
        and the collection (up to 1.52, Docker 29) speak, or E(DOCKER_API_VERSION) when set. Docker 20.10 through 29
        work; a daemon without a version in common is refused by name before anything changes.
    type: str
    aliases: [docker_url]
  docker_timeout:
    description: Seconds to wait for one Docker API call.
    type: int
    default: 60
requirements:
  - A Docker daemon reachable over its API socket (no Python Docker SDK is needed).
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
    description:
      - Where the brain lives. V(sqlite) and V(postgres) snapshot into the store on the host.
      - V(ebs) and V(gcp_disk) snapshot the cloud volume (EBS volume, GCP persistent disk) whose filesystem holds the
        SQLite brain, and restore by swapping in a new volume made from the snapshot; see C(docs/volume-snapshots.md).
    type: str
    choices: [sqlite, postgres, ebs, gcp_disk]
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
    description:
      - PostgreSQL role. The Engine's own role (the one in its C(DATABASE_URL)) is enough. It owns the brain's database,
        without CREATEDB or superuser.
      - See O(pg_restore_strategy) and the privileges listed in the collection's docs/brain-snapshots.md.
    type: str
  pg_password:
    description: Password of O(pg_user).
    type: str
  pg_database:
    description: The brain database.
    type: str
  pg_jobs:
    description: Parallel jobs for C(pg_dump) and C(pg_restore) (tables loaded at once).
    type: int
    default: 2
  pg_restore_strategy:
    description:
      - How a restore stages the snapshot and swaps it in. V(schema) restores into a new schema of the brain's own
        database and renames the schemas C(public) and staged in one transaction; the database's owner may do that.
      - V(database) restores into a new database and renames the databases; the role needs CREATEDB.
      - V(auto) uses V(database) when the role may create databases, else V(schema).
    type: str
    choices: [auto, schema, database]
    default: auto
  instance_id:
    description:
      - With O(backend=ebs), the EC2 instance id that runs the Engine; with O(backend=gcp_disk), the instance name.
    type: str
  device:
    description:
      - With a volume backend, the device the brain's volume is attached as (EBS C(/dev/sdf); GCP the disk's device name,
        for example C(brain)). A restored volume is attached at the same device.
    type: str
  device_path:
    description:
      - With a volume backend, where an attached volume appears on the host, as a template with C({volume_id}) and
        C({device}).
      - Defaults to C(/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_<id>), then the device name (EBS), and
        C(/dev/disk/by-id/google-{device}) (GCP).
    type: str
  volume_id:
    description: With a volume backend, the volume expected at O(device); anything else attached there is refused.
    type: str
  zone:
    description:
      - With a volume backend, the zone the restored volume must be created in; it must be the instance's zone (the
        default), or the module refuses before changing anything.
    type: str
  consistency:
    description:
      - With a volume backend, how the snapshot is made consistent. V(freeze) checkpoints the SQLite WAL and freezes the
        filesystem while the snapshot's point in time is fixed (the Engine keeps serving; writes wait); row counts are
        taken just before the freeze. V(drain) also stops the Engine for that moment, for exact row counts.
    type: str
    choices: [freeze, drain]
    default: freeze
  freeze_timeout:
    description:
      - With a volume backend, seconds the filesystem may stay frozen. A watchdog process thaws it after that, even if
        this module is killed; a snapshot whose freeze outlived it is deleted and the module fails.
    type: int
    default: 30
  snapshot_timeout:
    description:
      - With a volume backend, seconds to wait for the snapshot to complete. Defaults to 600 plus 30 per GiB of volume.
    type: int
  volume_timeout:
    description: With a volume backend, seconds each volume step (create, detach, attach) may take.
    type: int
    default: 600
  gcp_project:
    description: With O(backend=gcp_disk), the project of the instance and its disks.
    type: str
  gcp_zone:
    description: With O(backend=gcp_disk), the zone of the instance.
    type: str
  gcp_endpoint:
    description: With O(backend=gcp_disk), another Compute API endpoint (for example a private one).
    type: str
  gcp_request_timeout:
    description:
      - With O(backend=gcp_disk), the seconds one Compute API request may take (each call, including each
        C(zoneOperations.wait), which GCP itself ends after about two minutes whether or not the operation is done).
      - A long operation is waited on with one call after another until its own deadline (O(snapshot_timeout),
        O(volume_timeout)); this is the limit of each call, not of the operation.
    type: float
    default: 60
  gcp_auth_kind:
    description:
      - With O(backend=gcp_disk), the credentials; V(application) uses Application Default Credentials,
        V(serviceaccount) the key file O(gcp_credentials_file), V(none) no credentials (only with O(gcp_endpoint)).
    type: str
    choices: [application, serviceaccount, none]
    default: application
  gcp_credentials_file:
    description: With O(gcp_auth_kind=serviceaccount), the service account key file.
    type: path
  gcp_service_account_contents:
    description:
      - With O(gcp_auth_kind=serviceaccount), the service account key itself (its JSON), instead of a file on the host.
      - The playbooks pass the key of the credential AWX injects on the controller this way
        (C(engine_cloud_credentials_from_env)); never logged.
    type: str
  aws_region:
    description: AWS region of the EBS volume and of the S3 bucket. Defaults to the environment's (C(AWS_REGION)).
    type: str
  aws_endpoint_url:
    description: Another EC2 and S3 endpoint (for example a VPC endpoint).
    type: str
  aws_access_key:
    description: AWS access key id; defaults to the usual boto3 credential chain (environment, profile, instance role).
    type: str
  aws_secret_key:
    description: AWS secret access key of O(aws_access_key).
    type: str
  aws_session_token:
    description: AWS session token of temporary credentials.
    type: str
  aws_profile:
    description: AWS profile to take the credentials from.
    type: str
  s3_bucket:
    description:
      - Keep every file and dump snapshot off the host as well, in this S3 bucket; O(backend=ebs) and O(backend=gcp_disk)
        snapshots are off the host already.
      - M(engine_ops.lifecycle.brain_restore) fetches a snapshot missing from the local store from here, verified.
    type: str
  s3_prefix:
    description: Key prefix in O(s3_bucket); objects go to C(<prefix>/<engine>/<id>/<file>).
    type: str
    default: engine_ops
  s3_sse:
    description: Server-side encryption of every object.
    type: str
    choices: [AES256, aws:kms]
    default: AES256
  s3_kms_key_id:
    description: With O(s3_sse=aws:kms), the KMS key; defaults to the account's S3 key.
    type: str
  s3_multipart_mib:
    description: Files at least this large (MiB, minimum 5) are uploaded and downloaded in parts of this size.
    type: int
    default: 64
"""
