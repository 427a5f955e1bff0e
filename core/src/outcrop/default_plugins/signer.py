"""Built-in SigV4 signer: the default ``outcrop_sign_request`` (``trylast``, so plugins win)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import sigv4
from ..hookimpl import hookimpl
from ..types import ChatCall
from ..upstream import UpstreamRequest

if TYPE_CHECKING:
    from ..aws import FrozenCredentials


@hookimpl(trylast=True)
def outcrop_sign_request(
    request: UpstreamRequest, credentials: FrozenCredentials, call: ChatCall | None
) -> UpstreamRequest:
    sigv4.sign(
        request.method,
        request.url,
        request.headers,
        request.body,
        access_key=credentials.access_key,
        secret_key=credentials.secret_key,
        token=credentials.token,
        region=request.region,
        service=request.signing_name,
    )
    return request
