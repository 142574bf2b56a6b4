"""
A consumer of stemflow's job.completed and job.failed, written from docs/architecture.md and
docs/asyncapi.yaml alone, as another team would: pika for RabbitMQ, jsonschema for the documented
schemas, the minio client for the object store.

For each event it prints one JSON line: the job, the event type, and every way the event broke
the documents' promises ("problems"; empty when it kept them all) — headers and payload against
the AsyncAPI schemas, message_id = event id, and for job.completed each stem downloaded from the
store and checked: its size, its SHA-256, and (WAV) its sample rate, channels and duration.

Delivery is at least once: it deduplicates on the event id, keeping the ids it handled in a file,
so a restart (or a redelivery) does not report a job twice. Its queue is its own, durable, so
nothing published while it is down is lost.

Environment: AMQP_URL, S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY, S3_BUCKET (stemflow's own
settings), QUEUE (this consumer's queue name), STATE (a file for the handled ids), ASYNCAPI (the
path of docs/asyncapi.yaml).
"""
import hashlib
import io
import json
import os
import sys
import wave
from urllib.parse import urlparse

import jsonschema
import pika
import yaml
from minio import Minio

EXCHANGE = "stemflow.events"


def env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"consumer: {name} is not set")
    return value


doc = yaml.safe_load(open(env("ASYNCAPI")))
messages = {m["name"]: m for m in doc["components"]["messages"].values()}
payload_schemas = {name: jsonschema.Draft7Validator(m["payload"]) for name, m in messages.items()}
headers_schema = jsonschema.Draft7Validator(doc["components"]["schemas"]["Headers"])

endpoint = urlparse(env("S3_ENDPOINT"))
s3 = Minio(endpoint.netloc, access_key=env("S3_ACCESS_KEY"), secret_key=env("S3_SECRET_KEY"), secure=endpoint.scheme == "https", region="us-east-1")
bucket = env("S3_BUCKET")

state = env("STATE")
handled = set(open(state).read().split()) if os.path.exists(state) else set()


def check_stem(stem, event):
    """Downloads one stem and checks it against what job.completed says of it."""
    problems = []
    data = s3.get_object(bucket, stem["key"]).read()
    if len(data) != stem["bytes"]:
        problems.append(f"{stem['name']}: {len(data)} bytes, the event says {stem['bytes']}")
    if hashlib.sha256(data).hexdigest() != stem.get("sha256"):
        problems.append(f"{stem['name']}: SHA-256 differs from the event's")
    seconds = None
    if stem["format"] == "wav16":  # the standard library reads plain PCM WAV; other formats: size and hash only
        with wave.open(io.BytesIO(data)) as w:
            seconds = w.getnframes() / w.getframerate()
            if w.getframerate() != event["payload"].get("sampleRate"):
                problems.append(f"{stem['name']}: {w.getframerate()} Hz, the event says {event['payload'].get('sampleRate')}")
            if w.getnchannels() != event["payload"].get("channels"):
                problems.append(f"{stem['name']}: {w.getnchannels()} channels, the event says {event['payload'].get('channels')}")
        duration = event["payload"].get("durationSec")
        if duration is None or abs(seconds - duration) > 1 / (event["payload"].get("sampleRate") or 44100) + 1e-9:
            problems.append(f"{stem['name']}: {seconds} s long, the event says {duration}")
    return {"name": stem["name"], "bytes": len(data), "seconds": seconds}, problems


def on_message(channel, method, props, body):
    event = json.loads(body)
    if event.get("id") in handled:  # at least once: already reported
        channel.basic_ack(method.delivery_tag)
        return
    problems = [f"header: {e.message}" for e in headers_schema.iter_errors(props.headers or {})]
    validator = payload_schemas.get(event.get("type"))
    problems += [f"payload: {e.message}" for e in validator.iter_errors(event)] if validator else [f"unknown type {event.get('type')}"]
    if props.message_id != event.get("id"):
        problems.append("message_id is not the event id")
    result = {"jobId": event.get("jobId"), "type": event.get("type"), "eventId": event.get("id")}
    if event.get("type") == "job.completed" and not problems:
        stems = []
        for stem in event["payload"]["stems"]:
            checked, stem_problems = check_stem(stem, event)
            stems.append(checked)
            problems += stem_problems
        result["stems"] = stems
        result["durationSec"] = event["payload"].get("durationSec")
        result["reusedFrom"] = event["payload"].get("reusedFrom")
    if event.get("type") == "job.failed":
        result["reason"] = event["payload"].get("reason")
    result["problems"] = problems
    print(json.dumps(result), flush=True)
    with open(state, "a") as f:
        f.write(event["id"] + "\n")
    handled.add(event["id"])
    channel.basic_ack(method.delivery_tag)


def main():
    connection = pika.BlockingConnection(pika.URLParameters(env("AMQP_URL")))
    channel = connection.channel()
    queue = env("QUEUE")
    # A queue of our own, durable (quorum, as stemflow's are): events wait here while we are down.
    channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    for key in ("job.completed", "job.failed"):
        channel.queue_bind(queue, EXCHANGE, key)
    channel.basic_qos(prefetch_count=1)
    channel.basic_consume(queue, on_message)
    print(json.dumps({"ready": True, "queue": queue}), flush=True)
    channel.start_consuming()


if __name__ == "__main__":
    main()
