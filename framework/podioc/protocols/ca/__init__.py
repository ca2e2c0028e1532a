"""Channel Access: caproto's asyncio server with podioc's circuit, limits, access
rules and discovery, serving the model's PVs.

- :mod:`.channels`: caproto ChannelData bound to model PVs, and the pvdb;
- :mod:`.context` / :mod:`.circuit`: the server and one client connection;
- :mod:`.wire`: the one CA message framer; :mod:`.sansio`: protocol state;
- :mod:`.updates` / :mod:`.backlog`: monitor updates on their way out;
- :mod:`.limits`, :mod:`.access`, :mod:`.puts`: what a client may do;
- :mod:`.discovery`: searches, unicast fan-out and beacons;
- :mod:`.guard`: every caproto name used beyond its public API.
"""

from .channels import make_channel, make_pvdb
from .context import ServerContext

__all__ = ["ServerContext", "make_channel", "make_pvdb"]
