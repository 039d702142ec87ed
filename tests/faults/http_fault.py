"""mitmproxy addon of the fault-injection suite (tests/faults/http_fault.rs).

While the file named by the option `fault_flag` exists, every request is answered by the proxy
itself with HTTP 500 and a Confluent-style error body, as a registry whose storage failed would
answer; otherwise requests go through to the registry unchanged. A file rather than mitmproxy's
API keeps the test's control to creating and removing one file.
"""

import os

from mitmproxy import ctx, http

ERROR_BODY = b'{"error_code":50001,"message":"fault injected by the cdc-agent fault suite"}'


def load(loader):
    loader.add_option(
        name="fault_flag",
        typespec=str,
        default="",
        help="while this file exists, every request is answered with HTTP 500",
    )


def request(flow: http.HTTPFlow) -> None:
    flag = ctx.options.fault_flag
    if flag and os.path.exists(flag):
        flow.response = http.Response.make(
            500,
            ERROR_BODY,
            {"Content-Type": "application/vnd.schemaregistry.v1+json"},
        )
