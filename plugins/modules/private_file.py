#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: private_file
short_description: Write a report file or make a directory that only its owner can read
version_added: 0.1.0
description:
  - For the reports the roles keep (postmortem drafts, regression cases, diagnostics archives and their
    directories) - 0600 files and 0700 directories unless O(mode) says otherwise, never readable by other users.
  - With O(content) the file is written atomically (readers see the old or the new file, never half) and only when
    its content differs. Without it an existing file is only made private (for example after M(ansible.builtin.fetch)).
  - Missing parent directories are created 0700. A symbolic link at O(path) is refused, never followed.
  - On the controller itself (delegated to C(localhost), no become) the action plugin does the work in the
    controller's worker, without starting a module process; elsewhere the module runs on the host.
author:
  - engine_ops maintainers (@engine-ops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - engine_ops.lifecycle._engine.attributes
attributes:
  diff_mode:
    support: partial
    details: Path, kind, mode and size before and after; never the content, which may be sensitive.
options:
  path:
    description: The file or directory.
    type: path
    required: true
  state:
    description: A file or a directory.
    type: str
    choices: [file, directory]
    default: file
  content:
    description: The file's content (state V(file)). Omitted, the file must exist and is only made private.
    type: str
  mode:
    description:
      - Octal mode; default V(0600) for files and V(0700) for directories. Modes that give other users any access are
        refused.
    type: str
"""

EXAMPLES = r"""
- name: Draft the postmortem on the controller
  engine_ops.lifecycle.private_file:
    path: "{{ report_dir }}/postmortems/engine-1.md"
    content: "{{ lookup('ansible.builtin.template', 'postmortem.md.j2') }}"
  delegate_to: localhost

- name: Make a fetched archive private
  engine_ops.lifecycle.private_file:
    path: "{{ report_dir }}/diagnostics/engine-1.tar.gz"
  delegate_to: localhost
"""

RETURN = r"""
path:
  description: The file or directory.
  returned: always
  type: str
mode:
  description: Its mode, octal.
  returned: always
  type: str
  sample: "0600"
"""

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._module import EngineOpsModule, run
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._state.private_file import (
    PRIVATE_FILE_SPEC, PrivateFileError, apply)


def main():
    module = EngineOpsModule(argument_spec=dict(PRIVATE_FILE_SPEC), engine=None, docker=False, supports_check_mode=True)
    try:
        result = apply(module.params, module.check_mode, module._diff)
    except PrivateFileError as exc:
        module.fail_json(msg="private_file: %s; nothing was changed" % exc)
    module.exit_json(**result)


if __name__ == "__main__":
    run(main)
