"""The operations of ``outcrop``'s data-plane table that the pass-through cannot relay."""

from __future__ import annotations

#: Operation name -> why it is refused.
UNSUPPORTED = {
    "InvokeModelWithBidirectionalStream": (
        "InvokeModelWithBidirectionalStream needs a bidirectional HTTP/2 event stream, which the "
        "pass-through does not relay; call Bedrock directly for it"
    ),
}
