"""Separate process that polls /health of one or more Engines: `python _prober.py OUTFILE INTERVAL URL [URL...]`.

Stops when OUTFILE + '.stop' appears. Each line: monotonic time, URL index, 1 for healthy (2xx and status ok) or 0.
One process for a whole fleet, so that probing twenty Engines does not cost twenty processes.
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


def main(out, interval, urls):
    targets = [urlparse(url) for url in urls]
    with open(out, "w", encoding="utf-8") as handle:
        while not os.path.exists(out + ".stop"):
            for index, parts in enumerate(targets):
                ok = healthy(parts.hostname, parts.port, parts.path)
                handle.write("%.4f %d %d\n" % (time.monotonic(), index, ok))
            handle.flush()
            time.sleep(interval)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), sys.argv[3:])
