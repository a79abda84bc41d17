# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Change one service's image where compose reads it, keeping every other byte of the files.

The compose file is parsed with a round-trip YAML parser (ruamel.yaml) to find exactly where the
service's own `image:` value is written; only that value's characters are replaced (in its own quote
style), and the result is parsed again and compared with the original, so comments, quoting, order,
flow style and layout stay as they were. An image written as `${VAR}` (or `repo:${TAG}`) is changed
where compose takes the variable from: its line in the env file beside the compose file (`.env`) or
the one named. Anything that can't be changed that way (an image inherited through a merge key or an
alias, a variable not in the env file, a target the variable can't express) is refused with a
ComposeError that says what to change, before anything is written.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import traceback

try:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError
    HAS_RUAMEL = True
    RUAMEL_IMPORT_ERROR = None
except ImportError:
    HAS_RUAMEL = False
    RUAMEL_IMPORT_ERROR = traceback.format_exc()

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, $VAR; `$$` is a literal `$`
_VARIABLE = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?P<modifier>(?::?[-?+][^}]*)?)\}"
                       r"|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")
_PLAIN_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$")
_ENV_LINE = re.compile(r"^(?P<lead>\s*(?:export\s+)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*)(?P<value>.*?)"
                       r"(?P<tail>\s*(?:\s#.*)?)$")


class ComposeError(ValueError):
    pass


def _load(text, what="the compose file"):
    if not HAS_RUAMEL:
        raise ComposeError("the Python library ruamel.yaml is required to edit %s (pip install ruamel.yaml)" % what)
    try:
        return YAML(typ="rt").load(text)
    except YAMLError as exc:
        raise ComposeError("%s is not valid YAML: %s" % (what, str(exc).strip().splitlines()[-1]))


def _service(doc, service):
    if not isinstance(doc, dict) or not isinstance(doc.get("services"), dict):
        raise ComposeError("the compose file has no top-level 'services:' key")
    if service not in doc["services"]:
        raise ComposeError("service %r is not in the compose file" % service)
    found = doc["services"][service]
    if not isinstance(found, dict):
        raise ComposeError("service %r is not a mapping in the compose file" % service)
    return found


def service_image(text, service):
    """The service's image as written (before interpolation); ComposeError when it has none of its own."""
    return _image_position(text, service)[0]


def _image_position(text, service):
    svc = _service(_load(text), service)
    position = (getattr(svc.lc, "data", None) or {}).get("image")  # the service's own keys only
    if position is None:
        if "image" in svc:
            raise ComposeError("service %r takes its image from a merge key (<<: *anchor) shared with other services: "
                               "give the service its own image: line, or change the anchor yourself" % service)
        raise ComposeError("service %r has no 'image:' key (built from source?); add one to manage its image" % service)
    line, column = position[2], position[3]
    return svc["image"], line, column, svc.fa.flow_style()


def _is_alias(text, service):
    """Whether the service's `image:` key is followed by an alias (`image: *img`): the parser reports the position
    of the anchored value then, somewhere else in the file."""
    svc = _service(_load(text), service)
    key_line, key_column = svc.lc.data["image"][:2]
    after = text.splitlines(True)[key_line][key_column:]
    return re.match(r"""^(['"]?)image\1\s*:\s*\*""", after) is not None


def _token_end(line, column, flow):
    """End offset of the scalar that starts at `column` of `line`."""
    first = line[column:column + 1]
    if first == '"':
        index = column + 1
        while index < len(line):
            if line[index] == "\\":
                index += 2
                continue
            if line[index] == '"':
                return index + 1
            index += 1
        return -1
    if first == "'":
        index = column + 1
        while index < len(line):
            if line[index] == "'":
                if line[index + 1:index + 2] == "'":
                    index += 2
                    continue
                return index + 1
            index += 1
        return -1
    end = len(line.rstrip("\r\n"))
    comment = re.search(r"\s#", line[column:end])
    if comment:
        end = column + comment.start()
    if flow:
        stop = re.search(r"[,}\]]", line[column:end])
        if stop:
            end = column + stop.start()
    return len(line[:end].rstrip())


def _token(old_token, value):
    """`value` written the way the old token was: in the same quotes, or plain where plain is safe."""
    if old_token.startswith("'") and "'" not in value:
        return "'%s'" % value
    if old_token.startswith(("'", '"')) or not _PLAIN_SAFE.match(value):
        return '"%s"' % value.replace("\\", "\\\\").replace('"', '\\"')
    return value


def set_service_image(text, service, image):
    """Return (new_text, old_image) with the service's own `image:` value set to `image`, nothing else changed.

    The old value must not use variables (see plan_image_change) and must not be an alias or anchor.
    """
    old, line_no, column, flow = _image_position(text, service)
    lines = text.splitlines(True)
    line = lines[line_no]
    alias = _is_alias(text, service)
    if alias or line[column:column + 1] == "&":
        raise ComposeError("the image of service %r is written as a YAML %s, shared with other places: change it "
                           "yourself or give the service its own image: value"
                           % (service, "alias" if alias else "anchor"))
    end = _token_end(line, column, flow)
    if end < 0:
        raise ComposeError("the image of service %r spans several lines: write it on one line" % service)
    lines[line_no] = line[:column] + _token(line[column:end], image) + line[end:]
    new_text = "".join(lines)
    before, after = _load(text), _load(new_text)
    if _service(after, service).get("image") != image:
        raise ComposeError("could not rewrite the image of service %r in place" % service)
    _service(before, service)["image"] = image
    if before != after:
        raise ComposeError("rewriting the image of service %r would change more than that value" % service)
    return new_text, old


def _variables(value):
    """The variable references in an image value, `$$` (a literal dollar) left out."""
    return list(_VARIABLE.finditer(value.replace("$$", "\0\0")))


def plan_image_change(compose_text, service, image, env_text=None, env_path=".env"):
    """How to make compose start `image` for `service`: {"old", "compose_text", "env_text", "variable"}.

    Without variables in the service's image, the compose file's value is changed. With exactly one
    (`${ENGINE_IMAGE}`, `registry/engine:${ENGINE_TAG:-2.3.1}`), its line in the env file is changed so
    that the image compose computes is `image`; `compose_text` is then unchanged. ComposeError otherwise.
    """
    old = service_image(compose_text, service)
    found = _variables(old)
    if not found:
        new_text, dummy = set_service_image(compose_text, service, image)
        return {"old": old, "compose_text": new_text, "env_text": None, "variable": None}
    names = sorted(set(m.group("braced") or m.group("plain") for m in found))
    if len(found) > 1:
        raise ComposeError("the image of service %r is %r, made of several variables (%s): write the image into the "
                           "compose file or keep it in one variable" % (service, old, ", ".join(names)))
    match = found[0]
    name, modifier = names[0], match.group("modifier") or ""
    if re.match(r"^:?\+", modifier):
        raise ComposeError("the image of service %r is %r, whose ${%s:+...} form can't be set to %s: write the image "
                           "into the compose file" % (service, old, name, image))
    prefix, suffix = old[:match.start()].replace("\0\0", "$"), old[match.end():].replace("\0\0", "$")
    if not (image.startswith(prefix) and image.endswith(suffix) and len(image) > len(prefix) + len(suffix)):
        raise ComposeError("the image of service %r is %r: no value of %s makes it %s; change %s where compose reads it, "
                           "or write the image into the compose file" % (service, old, name, image, name))
    value = image[len(prefix):len(image) - len(suffix)]
    if env_text is None:
        raise ComposeError("the image of service %r is %r and there is no env file %s to set %s in: compose would take "
                           "%s from the environment of whoever runs it; set %s=%s there (a .env file beside the "
                           "compose file) or write the image into the compose file"
                           % (service, old, env_path, name, name, name, value))
    return {"old": old, "compose_text": compose_text, "env_text": set_env_value(env_text, name, value, env_path),
            "variable": name}


def set_env_value(text, name, value, env_path=".env"):
    """The env file with `name`'s value set, every other line kept; ComposeError when `name` is not set in it."""
    lines = text.splitlines(True)
    hits = []
    for index, line in enumerate(lines):
        match = _ENV_LINE.match(line.rstrip("\r\n"))
        if match and match.group("name") == name:
            hits.append(index)
    if not hits:
        raise ComposeError("the image uses ${%s}, which the env file %s does not set: compose would take it from the "
                           "environment of whoever runs it; add %s=... to %s or write the image into the compose file"
                           % (name, env_path, name, env_path))
    index = hits[-1]  # the last assignment wins
    line = lines[index]
    ending = line[len(line.rstrip("\r\n")):]
    match = _ENV_LINE.match(line.rstrip("\r\n"))
    old = match.group("value")
    quote = old[:1] if old[:1] in ("'", '"') and old.endswith(old[:1]) and len(old) > 1 else ""
    lines[index] = "%s%s%s%s%s%s" % (match.group("lead"), quote, value, quote, match.group("tail"), ending)
    return "".join(lines)


def env_file_for(compose_path, env_file=None):
    """The env file compose reads variables from: the one named, else `.env` beside the compose file."""
    return env_file or os.path.join(os.path.dirname(os.path.abspath(compose_path)), ".env")
