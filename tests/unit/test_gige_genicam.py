"""GenICam XML: URL parsing, zipped XML, feature resolution through a fake register port."""

from __future__ import annotations

import io
import struct
import zipfile

import pytest

from podioc.gige.errors import GenICamError
from podioc.gige.formula import evaluate
from podioc.gige.genicam import NodeMap, XmlLocation, parse_url, unpack_xml

XML = b"""<?xml version="1.0"?>
<RegisterDescription xmlns="http://www.genicam.org/GenApi/Version_1_0"
    ModelName="M" VendorName="V">
  <Integer Name="Width"><pValue>WidthReg</pValue><Min>1</Min><pMax>SensorWidth</pMax></Integer>
  <IntReg Name="WidthReg"><Address>0x100</Address><Length>4</Length>
    <Endianess>BigEndian</Endianess></IntReg>
  <Integer Name="SensorWidth"><Value>2048</Value></Integer>
  <Float Name="AcquisitionFrameRate"><pValue>Conv</pValue></Float>
  <Converter Name="Conv"><FormulaTo>(1000000 / FROM)</FormulaTo>
    <FormulaFrom>(1000000 / TO)</FormulaFrom><pValue>PeriodReg</pValue></Converter>
  <IntReg Name="PeriodReg"><Address>0x138</Address><Length>4</Length>
    <Endianess>BigEndian</Endianess></IntReg>
  <Enumeration Name="PixelFormat">
    <EnumEntry Name="Mono8"><Value>17301505</Value></EnumEntry>
    <EnumEntry Name="Mono16"><Value>17825799</Value></EnumEntry>
    <pValue>PixReg</pValue></Enumeration>
  <IntReg Name="PixReg"><Address>0x128</Address><Length>4</Length>
    <Endianess>BigEndian</Endianess></IntReg>
  <Command Name="AcquisitionStart"><pValue>AcqReg</pValue><CommandValue>1</CommandValue></Command>
  <IntReg Name="AcqReg"><Address>0x124</Address><Length>4</Length>
    <Endianess>BigEndian</Endianess></IntReg>
  <MaskedIntReg Name="Flag"><Address>0x1f0</Address><Length>4</Length><Bit>31</Bit>
    <Endianess>BigEndian</Endianess></MaskedIntReg>
  <StringReg Name="DeviceVendorName"><Address>0x48</Address><Length>32</Length></StringReg>
  <IntSwissKnife Name="PayloadSize"><pVariable Name="W">Width</pVariable>
    <Formula>W * 2 + (3 &amp; 1)</Formula></IntSwissKnife>
  <StructReg Name="Odd"><Address>0x0</Address></StructReg>
</RegisterDescription>
"""


class FakePort:
    """Registers in a dict, memory in a bytearray; records writes."""

    def __init__(self) -> None:
        self.regs = {0x100: 640, 0x138: 40000, 0x128: 17301505, 0x1f0: 0}
        self.memory = bytearray(0x100)
        self.memory[0x48:0x4e] = b"Aravis"
        self.writes: list[tuple[int, int]] = []

    def read_register(self, address: int) -> int:
        return self.regs[address]

    def write_register(self, address: int, value: int) -> None:
        self.writes.append((address, value))
        self.regs[address] = value

    def read_memory(self, address: int, size: int) -> bytes:
        if address in self.regs and size == 4:
            return struct.pack(">I", self.regs[address])
        return bytes(self.memory[address:address + size])


def test_features_read_and_written() -> None:
    port = FakePort()
    nodes = NodeMap(XML, port)
    assert nodes.get("Width") == 640 and nodes.limits("Width") == (1.0, 2048.0)
    assert nodes.get("AcquisitionFrameRate") == 25.0
    nodes.set("AcquisitionFrameRate", 10.0)
    assert port.regs[0x138] == 100000
    assert nodes.get_enum("PixelFormat") == "Mono8"
    nodes.set_enum("PixelFormat", "Mono16")
    assert port.regs[0x128] == 17825799
    nodes.execute("AcquisitionStart")
    assert port.writes[-1] == (0x124, 1)
    assert nodes.get_string("DeviceVendorName") == "Aravis"
    assert nodes.get("PayloadSize") == 1281
    nodes.set("Flag", 1)
    assert port.regs[0x1f0] == 1 and nodes.get("Flag") == 1
    assert nodes.first("ExposureTime", "Width") == "Width"


@pytest.mark.parametrize(("call", "message"), [
    (lambda n: n.get("Nope"), "has no feature 'Nope'"),
    (lambda n: n.get("Odd"), "is a StructReg, which this host cannot read"),
    (lambda n: n.set_enum("PixelFormat", "RGB8"), "entries: Mono8, Mono16"),
    (lambda n: n.execute("Width"), "not a Command"),
])
def test_feature_errors_name_the_feature(call: object, message: str) -> None:
    nodes = NodeMap(XML, FakePort())
    with pytest.raises(GenICamError, match=message):
        call(nodes)  # type: ignore[operator]


def test_unparsable_xml_names_source() -> None:
    with pytest.raises(GenICamError, match="camera X: cannot parse the XML"):
        NodeMap(b"<a><b></a>", FakePort(), source="camera X")


def test_url_and_zip() -> None:
    assert parse_url("Local:arv.xml;10000;3e67") == XmlLocation("arv.xml", 0x10000, 0x3e67)
    with pytest.raises(GenICamError, match="only 'Local:' URLs"):
        parse_url("http://example.invalid/cam.xml")
    with pytest.raises(GenICamError, match="not 'Local:name;address;size'"):
        parse_url("Local:arv.xml;zz")
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as archive:
        archive.writestr("cam.xml", XML)
    assert unpack_xml(XmlLocation("cam.zip", 0, 0), raw.getvalue()) == XML
    with pytest.raises(GenICamError, match="not a valid zip"):
        unpack_xml(XmlLocation("cam.zip", 0, 0), b"PK garbage")
    assert unpack_xml(XmlLocation("cam.xml", 0, 0), XML + b"\0\0") == XML


@pytest.mark.parametrize(("formula", "names", "value"), [
    ("(1000000 / TO)", {"TO": 40000}, 25.0), ("A = 2 ? 1 : 0", {"A": 2}, None),
    ("(A = 2) && (B <> 3)", {"A": 2, "B": 4}, 1.0), ("W >> 1", {"W": 8}, 4.0),
])
def test_formulas(formula: str, names: dict[str, float], value: float | None) -> None:
    if value is None:
        with pytest.raises(GenICamError, match="not supported"):
            evaluate(formula, names)
    else:
        assert evaluate(formula, names) == value
