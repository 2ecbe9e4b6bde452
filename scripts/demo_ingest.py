"""Ingest one URL through the running API and follow the job to its end (stdlib only)."""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request


def call(method: str, url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def wait_for_api(api: str) -> None:
    for _ in range(150):
        try:
            call("GET", f"{api}/health")
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    sys.exit(f"the API did not come up at {api}")


def main(api: str, url: str) -> int:
    wait_for_api(api)
    started = time.monotonic()
    code, accepted = call("POST", f"{api}/ingest", {"url": url})
    print(f"POST /ingest {url} -> {code} {accepted}")
    if code >= 300:
        return 1
    job_id, last = accepted["job_id"], None
    while True:
        _, job = call("GET", f"{api}/jobs/{job_id}")
        progress = job["progress"]
        line = f"{job['status']:>8}  {progress['chapters_fetched']}/{progress['chapters_found']}"
        if line != last:
            print(f"job {job_id}: {line}")
            last = line
        if job["status"] in ("done", "error"):
            break
        time.sleep(0.1)
    if job["status"] == "error":
        print(f"job {job_id} failed: {job['error_message']}")
        return 1
    _, novel = call("GET", f"{api}/novels/{job['novel_id']}")
    elapsed = time.monotonic() - started
    print(
        f"done in {elapsed:.1f} s: novel {novel['id']} {novel['title']!r} by {novel['author']}, "
        f"{novel['chapter_count']} chapters -> {api}/novels/{novel['id']}/chapters"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
