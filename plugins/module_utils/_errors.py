# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Exceptions that modules catch without importing the libraries that raise them."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class EngineDockerError(Exception):
    """A Docker operation failed; the message says which and why."""
