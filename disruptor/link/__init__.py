"""The peer link: how one peer calls another, at the bottom of the layers.

``PeerLink`` (``peer_link.py``) is the HTTP client every part uses for peer-to-peer calls;
``signature.py`` is the signed ``X-Disruptor-Peer`` header, both the signing and the checking
(``PeerCallCheck``, used by the API's auth middleware). Nothing here knows what a part sends.
"""

from .peer_link import PeerLink, PeerReply
from .signature import PEER_AUTH_HEADER, PeerCallCheck, sign

__all__ = ["PEER_AUTH_HEADER", "PeerCallCheck", "PeerLink", "PeerReply", "sign"]
