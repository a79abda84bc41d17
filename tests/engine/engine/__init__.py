"""Reference Engine: a faithful, small implementation of ENGINE_CONTRACT.md for tests.

Nothing in the collection may depend on behaviour only this Engine has; it exists so that
modules, roles and playbooks are exercised against something that drains, migrates, logs and
breaks the way the real Engine does.
"""
