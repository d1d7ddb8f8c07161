#!/usr/bin/env python3
"""tests/web/cdp_page.py CHROMIUM URL SHOT PROFILE_DIR - opens URL in headless Chromium,
waits (real time, bounded: 60 s) until the page's <div id="result"> no longer says
"loading", saves a 900x700 screenshot to SHOT, and prints the result div's outerHTML on
the first line and the text of <pre id="output"> after it. Exit status 0 when the result
came in time (whatever it says: check-page.sh judges it), 1 otherwise.

Chromium is driven over --remote-debugging-pipe (the DevTools protocol as NUL-ended JSON
on file descriptors 3 and 4; no WebSocket module needed). This replaces --dump-dom with
--virtual-time-budget, whose virtual time can run out before the browser has drawn a
single frame on a loaded machine: the demo loads in its frame loop (requestAnimationFrame),
so the DOM was sometimes dumped right after main() with nothing loaded yet."""
import base64
import json
import os
import subprocess
import sys
import time

chromium, url, shot, profile = sys.argv[1:5]
DEADLINE_S = 60

to_chrome_r, to_chrome_w = os.pipe()
from_chrome_r, from_chrome_w = os.pipe()
os.set_inheritable(to_chrome_r, True)
os.set_inheritable(from_chrome_w, True)
flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-dev-shm-usage", "--user-data-dir=" + profile, "--window-size=900,700",
         "--remote-debugging-pipe", "about:blank"]


def child_fds():  # the pipe ends at descriptors 3 (commands in) and 4 (replies out)
    a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)  # either may be 3 or 4 now
    os.dup2(a, 3)
    os.dup2(b, 4)


proc = subprocess.Popen([chromium] + flags, stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL, stderr=open(profile + ".log", "wb"),
                        preexec_fn=child_fds, close_fds=False)
os.close(to_chrome_r)
os.close(from_chrome_w)
out = os.fdopen(to_chrome_w, "wb", buffering=0)
inp = os.fdopen(from_chrome_r, "rb", buffering=0)
buf = b""
next_id = 0
start = time.monotonic()


def call(method, session=None, **params):
    """One command; returns its result (events in between are dropped)."""
    global buf, next_id
    next_id += 1
    msg = {"id": next_id, "method": method, "params": params}
    if session:
        msg["sessionId"] = session
    out.write(json.dumps(msg).encode() + b"\0")
    while True:
        while b"\0" not in buf:
            chunk = inp.read(65536)
            if not chunk:
                raise RuntimeError("chromium closed the pipe during " + method)
            buf += chunk
        raw, buf = buf.split(b"\0", 1)
        reply = json.loads(raw)
        if reply.get("id") == next_id:
            if "error" in reply:
                raise RuntimeError(method + ": " + json.dumps(reply["error"]))
            return reply["result"]


def evaluate(session, expr):
    r = call("Runtime.evaluate", session, expression=expr, returnByValue=True)
    return r.get("result", {}).get("value")


rc = 1
try:
    target = call("Target.createTarget", url="about:blank")["targetId"]
    session = call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    call("Page.enable", session)
    call("Emulation.setDeviceMetricsOverride", session, width=900, height=700,
         deviceScaleFactor=1, mobile=False)
    call("Page.navigate", session, url=url)
    result = None
    # bounded poll of another process's state (the browser's DOM), like nginx's port
    while time.monotonic() - start < DEADLINE_S:
        text = evaluate(session, "(document.getElementById('result')||{}).textContent||''")
        if text and not text.startswith("loading"):
            result = text
            break
        time.sleep(0.1)
    png = call("Page.captureScreenshot", session, format="png")["data"]
    with open(shot, "wb") as f:
        f.write(base64.b64decode(png))
    print(evaluate(session, "(document.getElementById('result')||{}).outerHTML||''"))
    print(evaluate(session, "(document.getElementById('output')||{}).textContent||''"))
    rc = 0 if result is not None else 1
    if result is None:
        print("cdp_page: no result after %d s" % DEADLINE_S, file=sys.stderr)
    try:
        call("Browser.close")
    except RuntimeError:
        pass  # closing: the pipe may end before the reply
finally:
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
sys.exit(rc)
