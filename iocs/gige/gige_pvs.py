"""The PVs of the GigE Vision camera IOC (areaDetector names); behaviour is in ioc.py."""

from __future__ import annotations

from podioc import IOC, __version__, pv

DETECTOR_STATES = ["Idle", "Acquire", "Readout", "Correct", "Saving", "Aborting", "Error",
                   "Waiting", "Initializing", "Disconnected", "Aborted"]
IMAGE_MODES = ["Single", "Multiple", "Continuous"]
DATA_TYPES = ["Int8", "UInt8", "Int16", "UInt16", "Int32", "UInt32", "Int64", "UInt64",
              "Float32", "Float64"]
COLOR_MODES = ["Mono", "Bayer", "RGB1", "RGB2", "RGB3", "YUV444", "YUV422", "YUV421"]
PIXEL_FORMATS = ["Mono8", "Mono16", "RGB8"]
TRIGGER_SOURCES = ["Software", "Line0", "Line1"]
#: pixel format -> (DataType, ColorMode)
FORMAT_TYPES = {"Mono8": ("UInt8", "Mono"), "Mono16": ("UInt16", "Mono"),
                "RGB8": ("UInt8", "RGB1")}
#: numpy dtype of an image -> areaDetector DataType
NUMPY_TYPES = {"uint8": "UInt8", "uint16": "UInt16"}


def _ad(name: str) -> str:
    return f"cam1:{name}"


class CameraPVs(IOC):
    """ADBase/ADDriver, NDStdArrays-like and stream-statistics PVs of one camera."""

    acquire = pv.enum(["Done", "Acquire"], "Done", name=_ad("Acquire"), writable=True,
                      description="Start/stop acquisition")
    acquire_rbv = pv.enum(["Done", "Acquire"], "Done", name=_ad("Acquire_RBV"))
    acquire_time = pv.float(0.01, name=_ad("AcquireTime"), units="s", precision=6,
                            writable=True, limits=(1e-5, 10.0), description="Exposure time")
    acquire_time_rbv = pv.float(0.0, name=_ad("AcquireTime_RBV"), units="s", precision=6)
    acquire_period = pv.float(0.04, name=_ad("AcquirePeriod"), units="s", precision=6,
                              writable=True, limits=(1e-3, 10.0),
                              description="Frame period (1 / FrameRate)")
    acquire_period_rbv = pv.float(0.0, name=_ad("AcquirePeriod_RBV"), units="s", precision=6)
    frame_rate = pv.float(25.0, name=_ad("FrameRate"), units="Hz", precision=3, writable=True,
                          limits=(0.1, 1000.0), description="Frame rate")
    frame_rate_rbv = pv.float(0.0, name=_ad("FrameRate_RBV"), units="Hz", precision=3)
    gain = pv.float(0.0, name=_ad("Gain"), precision=2, writable=True, limits=(0.0, 1000.0))
    gain_rbv = pv.float(0.0, name=_ad("Gain_RBV"), precision=2)
    size_x = pv.int(512, name=_ad("SizeX"), writable=True, limits=(1, 65535))
    size_x_rbv = pv.int(0, name=_ad("SizeX_RBV"))
    size_y = pv.int(512, name=_ad("SizeY"), writable=True, limits=(1, 65535))
    size_y_rbv = pv.int(0, name=_ad("SizeY_RBV"))
    max_size_x = pv.int(0, name=_ad("MaxSizeX_RBV"))
    max_size_y = pv.int(0, name=_ad("MaxSizeY_RBV"))
    pixel_format = pv.enum(PIXEL_FORMATS, "Mono8", name=_ad("PixelFormat"), writable=True)
    pixel_format_rbv = pv.enum(PIXEL_FORMATS, "Mono8", name=_ad("PixelFormat_RBV"))
    data_type = pv.enum(DATA_TYPES, "UInt8", name=_ad("DataType"))
    data_type_rbv = pv.enum(DATA_TYPES, "UInt8", name=_ad("DataType_RBV"))
    color_mode = pv.enum(COLOR_MODES, "Mono", name=_ad("ColorMode"))
    color_mode_rbv = pv.enum(COLOR_MODES, "Mono", name=_ad("ColorMode_RBV"))
    image_mode = pv.enum(IMAGE_MODES, "Continuous", name=_ad("ImageMode"), writable=True)
    image_mode_rbv = pv.enum(IMAGE_MODES, "Continuous", name=_ad("ImageMode_RBV"))
    num_images = pv.int(1, name=_ad("NumImages"), writable=True, limits=(1, 2**31 - 1))
    num_images_rbv = pv.int(1, name=_ad("NumImages_RBV"))
    num_images_counter = pv.int(0, name=_ad("NumImagesCounter_RBV"))
    array_counter = pv.int(0, name=_ad("ArrayCounter"), writable=True)
    array_counter_rbv = pv.int(0, name=_ad("ArrayCounter_RBV"))
    array_rate = pv.float(0.0, name=_ad("ArrayRate_RBV"), units="Hz", precision=2)
    array_size_x = pv.int(0, name=_ad("ArraySizeX_RBV"))
    array_size_y = pv.int(0, name=_ad("ArraySizeY_RBV"))
    array_size = pv.int(0, name=_ad("ArraySize_RBV"), units="bytes")
    detector_state = pv.enum(DETECTOR_STATES, "Initializing", name=_ad("DetectorState_RBV"))
    status_message = pv.string("", name=_ad("StatusMessage_RBV"))
    manufacturer = pv.string("", name=_ad("Manufacturer_RBV"))
    model = pv.string("", name=_ad("Model_RBV"))
    serial_number = pv.string("", name=_ad("SerialNumber_RBV"))
    firmware = pv.string("", name=_ad("FirmwareVersion_RBV"))
    # areaDetector housekeeping that ophyd-async's ADBaseIO/AravisDriverIO declare
    port_name = pv.string("GIGE1", name=_ad("PortName_RBV"))
    ad_core_version = pv.string("podioc", name=_ad("ADCoreVersion_RBV"))
    driver_version = pv.string(__version__, name=_ad("DriverVersion_RBV"))
    sdk_version = pv.string("podioc.gige", name=_ad("SDKVersion_RBV"))
    nd_attributes_file = pv.string("", name=_ad("NDAttributesFile"), writable=True,
                                   description="Accepted, not used (no NDAttributes here)")
    wait_for_plugins = pv.bool(False, name=_ad("WaitForPlugins"), states=("No", "Yes"),
                               writable=True, description="Accepted, no plugins here")
    array_size_z = pv.int(0, name=_ad("ArraySizeZ_RBV"))
    cam_size0 = pv.int(0, name=_ad("ArraySize0_RBV"))
    cam_size1 = pv.int(0, name=_ad("ArraySize1_RBV"))
    cam_size2 = pv.int(0, name=_ad("ArraySize2_RBV"))
    cam_unique_id = pv.int(0, name=_ad("UniqueId_RBV"))
    trigger_mode = pv.enum(["Off", "On"], "Off", name=_ad("TriggerMode"), writable=True)
    trigger_mode_rbv = pv.enum(["Off", "On"], "Off", name=_ad("TriggerMode_RBV"))
    trigger_source = pv.enum(TRIGGER_SOURCES, "Software", name=_ad("TriggerSource"),
                             writable=True)
    trigger_source_rbv = pv.enum(TRIGGER_SOURCES, "Software", name=_ad("TriggerSource_RBV"))
    # stream statistics (GVSP)
    stream_port = pv.int(0, name=_ad("StreamPort_RBV"), description="Negotiated UDP port")
    stream_frames = pv.int(0, name=_ad("StreamFrames_RBV"), description="Frames received")
    stream_incomplete = pv.int(0, name=_ad("StreamFramesIncomplete_RBV"))
    stream_missing = pv.int(0, name=_ad("StreamPacketsMissing_RBV"))
    stream_malformed = pv.int(0, name=_ad("StreamPacketsMalformed_RBV"))
    stream_packets = pv.int(0, name=_ad("StreamPackets_RBV"))
    stream_dropped = pv.int(0, name=_ad("StreamFramesDropped_RBV"),
                            description="Frames not served: the IOC fell behind")
    stream_status = pv.string("", name=_ad("StreamStatus_RBV"))
    # NDStdArrays-like CA image
    array_size0 = pv.int(0, name="image1:ArraySize0_RBV")
    array_size1 = pv.int(0, name="image1:ArraySize1_RBV")
    array_size2 = pv.int(0, name="image1:ArraySize2_RBV")
    image_counter = pv.int(0, name="image1:ArrayCounter_RBV")
    unique_id = pv.int(0, name="image1:UniqueId_RBV")
