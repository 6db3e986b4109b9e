#!/usr/bin/env python3
"""A lab-script client of casmand, over its Unix socket with grpcio.

Generate the stubs from the .proto files first (they are not committed):

    python -m grpc_tools.protoc -I proto --python_out=OUT --grpc_python_out=OUT \
        proto/casman/v1/*.proto
    PYTHONPATH=OUT python examples/python/casman_client.py --socket /run/casman/casmand.sock

(on an installed host the .proto files are in /usr/share/casman/proto). The
script lists parts, adds an antenna and an LNA and records the connection
between them, traces the antenna's chain, then triggers a backup of parts.db
and assembled_casm.db and waits for it (the Backups.Backup RPC streams
progress, then one Done per database). Lines of output are `key: value`.
"""

import argparse
import sys

import grpc

from casman.v1 import assembly_pb2, assembly_pb2_grpc
from casman.v1 import backups_pb2, backups_pb2_grpc
from casman.v1 import parts_pb2, parts_pb2_grpc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--socket", default="/run/casman/casmand.sock", help="casmand's Unix socket")
    ap.add_argument("--operator", default="lab-script", help="name recorded in the audit log")
    args = ap.parse_args()

    # grpcio understands unix:///absolute/path targets; no options needed.
    channel = grpc.insecure_channel(f"unix://{args.socket}")
    grpc.channel_ready_future(channel).result(timeout=10)
    # The operator's name travels in a metadata header, as casmanctl --operator does.
    meta = [("x-casman-operator", args.operator)]
    parts = parts_pb2_grpc.PartsStub(channel)
    assembly = assembly_pb2_grpc.AssemblyStub(channel)
    backups = backups_pb2_grpc.BackupsStub(channel)

    # ListParts streams pages of parts.
    before = [p.part_number for page in parts.ListParts(parts_pb2.ListPartsRequest()) for p in page.parts]
    print(f"parts_before: {len(before)}")

    ant = parts.AddParts(parts_pb2.AddPartsRequest(part_type="ANTENNA", count=1, polarization="P1"), metadata=meta)
    lna = parts.AddParts(parts_pb2.AddPartsRequest(part_type="LNA", count=1, polarization="P1"), metadata=meta)
    antenna = ant.parts[0].part_number
    amplifier = lna.parts[0].part_number
    print(f"added: {antenna} {amplifier}")
    listed = [p.part_number for page in parts.ListParts(parts_pb2.ListPartsRequest()) for p in page.parts]
    print(f"parts_after: {len(listed)}")

    conn = assembly.Connect(assembly_pb2.ConnectRequest(source=antenna, target=amplifier), metadata=meta)
    print(f"connected: {conn.connection.source} -> {conn.connection.target}")

    chain = assembly.GetChain(assembly_pb2.GetChainRequest(part=antenna))
    print(f"chain: {' -> '.join(chain.parts)}")

    # Errors arrive as gRPC status codes with a one-line message.
    try:
        assembly.Connect(assembly_pb2.ConnectRequest(source=antenna, target=antenna), metadata=meta)
    except grpc.RpcError as e:
        print(f"refused: {e.code().name}")

    done = 0
    for event in backups.Backup(backups_pb2.BackupRequest(), metadata=meta):
        kind = event.WhichOneof("event")
        if kind == "done":
            done += 1
            v = event.done.version
            print(f"backup_done: {v.database} {v.key}")
    print(f"backups: {done}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
