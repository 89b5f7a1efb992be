"""Helpers shared by the benchmark scripts."""
import time
import urllib.request

# Loopback requests must never go through a proxy from the environment.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def wait_for(condition, what, deadline_s=60.0, interval=0.005):
    """Polls `condition` until it returns a truthy value, which is returned."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(what)


def rss_mb(pid):
    """Resident set size of a process, in MB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")
