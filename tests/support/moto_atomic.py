"""moto's standalone server with atomic conditional writes.

moto serves each request on its own thread and checks If-Match and
If-None-Match before it stores the object, without a lock: two sites
replacing the manifest at the same moment can both pass the check, and one
update is silently lost. S3 and R2 apply a conditional write atomically,
and casman relies on that (the manifest compare-and-swap), so the tests run
moto with its object-writing requests serialized. Reads stay concurrent.

Usage: python moto_atomic.py [moto_server arguments]
"""

import sys
import threading

from moto.s3.responses import S3Response
from moto.server import main

_WRITES = threading.Lock()


def _serialized(method):
    def locked(self, *args, **kwargs):
        with _WRITES:
            return method(self, *args, **kwargs)

    return locked


# PUT (If-Match, If-None-Match), copy, and POST (CompleteMultipartUpload
# with If-None-Match).
for name in ("put_object", "copy_object", "_key_response_post"):
    setattr(S3Response, name, _serialized(getattr(S3Response, name)))

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
