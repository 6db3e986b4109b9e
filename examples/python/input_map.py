#!/usr/bin/env python3
"""The correlator input map from casmand, now or at a past moment, with grpcio.

Generate the stubs from the .proto files first (they are not committed):

    python -m grpc_tools.protoc -I proto --python_out=OUT --grpc_python_out=OUT \
        proto/casman/v1/*.proto
    PYTHONPATH=OUT python examples/python/input_map.py --socket /run/casman/casmand.sock \
        --at 2026-03-03T21:15:00Z

(on an installed host the .proto files are in /usr/share/casman/proto). The
script streams Assembly.ExportInputs (one InputRow per antenna polarization,
see proto/casman/v1/inputs.proto) and prints, for every complete row, the
packet index the F-engines use and where that antenna stands, then a line
per row that is not complete with the reasons. Lines are `key: value`.
"""

import argparse
import sys

import grpc

from casman.v1 import assembly_pb2_grpc, inputs_pb2


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--socket", default="/run/casman/casmand.sock", help="casmand's Unix socket")
    ap.add_argument("--at", default="", help="a past moment (RFC 3339 or YYYY-MM-DD[ HH:MM[:SS]], UTC); now if absent")
    args = ap.parse_args()

    channel = grpc.insecure_channel(f"unix://{args.socket}")
    grpc.channel_ready_future(channel).result(timeout=10)
    assembly = assembly_pb2_grpc.AssemblyStub(channel)

    complete = incomplete = 0
    try:
        for row in assembly.ExportInputs(inputs_pb2.ExportInputsRequest(as_of=args.at)):
            if row.complete:
                complete += 1
                # Optional fields: HasField says whether the value is known.
                where = (
                    f"{row.grid_code} e={row.east_m:.3f} n={row.north_m:.3f} u={row.up_m:.3f}"
                    if row.HasField("east_m")
                    else (row.grid_code or "no position")
                )
                print(f"input: packet {row.packet_index} {row.snap_port} {row.antenna} {where}")
            else:
                incomplete += 1
                print(f"incomplete: {row.antenna} {'; '.join(row.problems)}")
    except grpc.RpcError as e:
        # A time casmand cannot read is INVALID_ARGUMENT, with the forms it takes.
        print(f"error: {e.code().name}: {e.details()}", file=sys.stderr)
        return 2
    print(f"complete: {complete}")
    print(f"incomplete_rows: {incomplete}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
