"""Separate process that polls /health and records each answer: `python _prober.py URL OUTFILE`.

Stops when OUTFILE + '.stop' appears. Each line: monotonic time, 1 for healthy (2xx and status ok) or 0.
"""

import http.client
import json
import os
import sys
import time
from urllib.parse import urlparse


def healthy(host, port, path):
    conn = http.client.HTTPConnection(host, port, timeout=0.2)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        return 200 <= response.status < 300 and json.loads(body).get("status") == "ok"
    except (OSError, ValueError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def main(url, out):
    parts = urlparse(url)
    with open(out, "w", encoding="utf-8") as handle:
        while not os.path.exists(out + ".stop"):
            handle.write("%.4f %d\n" % (time.monotonic(), healthy(parts.hostname, parts.port, parts.path)))
            handle.flush()
            time.sleep(0.01)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
