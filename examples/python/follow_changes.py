#!/usr/bin/env python3
"""Follow casmand's changes as they commit (the Changes.WatchChanges feed).

Generate the stubs from the .proto files first (see casman_client.py):

    python -m grpc_tools.protoc -I proto --python_out=OUT --grpc_python_out=OUT \
        proto/casman/v1/*.proto
    PYTHONPATH=OUT python examples/python/follow_changes.py --state last-change.id

Each change is printed as one line `change: KIND SUBJECT OTHER site=SITE
operator=OPERATOR time=TIME`. With --state FILE the id of the last change
processed is kept in FILE (written after the change is processed) and the
next run resumes just after it: no change is missed or seen twice, also
across a restart of casmand or of this script. A lost connection is retried,
resuming the same way. --count N stops after N changes (for tests).
"""

import argparse
import os
import sys
import time

import grpc

from casman.v1 import changes_pb2, changes_pb2_grpc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--socket", default="/run/casman/casmand.sock", help="casmand's Unix socket")
    ap.add_argument("--state", help="file keeping the id of the last change processed")
    ap.add_argument("--from-start", action="store_true", help="without a kept id: from the first change")
    ap.add_argument("--count", type=int, default=0, help="stop after this many changes (0: never)")
    args = ap.parse_args()

    after = ""
    if args.state and os.path.exists(args.state):
        with open(args.state) as f:
            after = f.read().strip()
    seen = 0
    while True:
        channel = grpc.insecure_channel(f"unix://{args.socket}")
        feed = changes_pb2_grpc.ChangesStub(channel)
        request = changes_pb2.WatchChangesRequest(after=after, from_start=args.from_start and not after)
        try:
            for change in feed.WatchChanges(request):
                if change.kind == "replaced":
                    # A database was replaced whole (a restore): re-read what you keep.
                    print(f"replaced: {change.database}", flush=True)
                else:
                    print(
                        f"change: {change.kind} {change.subject} {change.other or '-'} "
                        f"site={change.site} operator={change.operator} time={change.time}",
                        flush=True,
                    )
                # Processed: this is where to resume from.
                after = change.id
                if args.state:
                    with open(args.state + ".partial", "w") as f:
                        f.write(after)
                    os.replace(args.state + ".partial", args.state)
                seen += 1
                if args.count and seen >= args.count:
                    return 0
        except grpc.RpcError as e:
            if e.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
                print(f"error: {e.code().name}: {e.details()}", file=sys.stderr)
                return 1
            print(f"disconnected ({e.code().name}); resuming", file=sys.stderr)
            time.sleep(1)
        finally:
            channel.close()


if __name__ == "__main__":
    sys.exit(main())
