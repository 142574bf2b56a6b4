"""schemathesis hooks for stemflow: an upload's `file` is a real (tiny) song, so generated submits
make jobs that run, and the stateful phase follows them through every route. Whether the server
refuses bytes that are not audio is tested elsewhere (test/engines/abuse)."""
import io
import math
import struct
import wave

import schemathesis


def _song() -> bytes:
    rate, frames = 22050, 11025
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<hh", int(8000 * math.sin(2 * math.pi * 440 * i / rate)), int(6000 * math.sin(2 * math.pi * 220 * i / rate))) for i in range(frames)))
    return out.getvalue()


SONG = _song()


@schemathesis.hook
def map_body(context, body):
    op = context.operation
    if op is not None and op.method.upper() == "POST" and op.path == "/api/jobs" and isinstance(body, dict) and body.get("file"):
        body = {**body, "file": SONG}
    return body
