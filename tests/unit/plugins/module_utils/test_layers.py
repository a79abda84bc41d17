"""The folders of module_utils are layers: imports point down, never back up (lazy imports included)."""

import ast
import os

HERE = os.path.dirname(os.path.abspath(__file__))
MODULE_UTILS = os.path.join(HERE, "..", "..", "..", "..", "plugins", "module_utils")
PREFIX = "ansible_collections.engine_ops.lifecycle.plugins.module_utils."
# top first: the Ansible wrapper, then each layer may import only the layers below it (and itself)
LAYERS = ["_module", "_aftermath", "_brain", "_docker", "_judge", "_state", "_errors"]


def layer_of(dotted):
    return dotted.split(".")[0]


def imports(path):
    tree = ast.parse(open(path).read())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PREFIX):
            target = node.module[len(PREFIX):]
            yield node.lineno, target
        elif isinstance(node, ast.ImportFrom) and node.module == PREFIX[:-1]:
            for alias in node.names:
                yield node.lineno, alias.name


def test_every_file_is_in_a_layer_and_imports_only_downwards():
    problems = []
    for root, dummy, files in os.walk(MODULE_UTILS):
        for name in files:
            if not name.endswith(".py") or name == "__init__.py":
                continue
            path = os.path.join(root, name)
            rel = os.path.relpath(path, MODULE_UTILS)
            own = rel.split(os.sep)[0].replace(".py", "")
            if own not in LAYERS:
                problems.append("%s is in no layer (%s)" % (rel, ", ".join(LAYERS)))
                continue
            for line, target in imports(path):
                other = layer_of(target)
                if other not in LAYERS:
                    problems.append("%s:%d imports %s, which is in no layer" % (rel, line, target))
                elif LAYERS.index(other) < LAYERS.index(own):
                    problems.append("%s:%d imports %s, a layer above its own (%s)" % (rel, line, target, own))
    assert problems == []
