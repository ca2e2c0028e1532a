"""A GigE Vision host: GVCP control, GenICam XML, GVSP stream into numpy frames.

Self-contained (imports only util/errors). Layers, bottom up:

- :mod:`.gvcp`: GVCP packets (sans-io) and :class:`.gvcp.GvcpClient`, a
  blocking UDP control channel with request ids, acks and retries;
- :mod:`.discovery`: discovery by broadcast or unicast;
- :mod:`.genicam`: the device's GenICam XML (plain or zipped) resolved far
  enough to read and write the features a camera IOC uses;
- :mod:`.gvsp`: GVSP packets (sans-io) and :class:`.gvsp.FrameAssembler`;
- :mod:`.stream`: the stream socket on a free port and its receiving thread;
- :mod:`.camera`: :class:`.camera.Camera`, the whole host for one device.
"""

from .camera import Camera, CameraInfo
from .discovery import DeviceInfo, discover
from .errors import GenICamError, GigEError, GvcpError, GvcpTimeout
from .gvsp import Frame, StreamStats

__all__ = ["Camera", "CameraInfo", "DeviceInfo", "Frame", "GenICamError", "GigEError",
           "GvcpError", "GvcpTimeout", "StreamStats", "discover"]
