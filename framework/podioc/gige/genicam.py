"""GenICam XML: fetch it from the device (plain or zipped) and resolve features.

Only what a camera IOC needs: Integer, Float, Boolean, Enumeration, Command
and String features whose values come from IntReg, MaskedIntReg, FloatReg,
StringReg, Converter, IntConverter, SwissKnife and IntSwissKnife nodes, or
constants. Anything else raises :class:`GenICamError` naming the feature.
"""

from __future__ import annotations

import io
import struct
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from typing import Protocol

from .errors import GenICamError
from .formula import evaluate


class RegisterPort(Protocol):
    """What a GenICam node map reads and writes through (a GVCP client)."""

    def read_register(self, address: int) -> int: ...
    def write_register(self, address: int, value: int) -> None: ...
    def read_memory(self, address: int, size: int) -> bytes: ...


@dataclass(frozen=True)
class XmlLocation:
    """Where a device keeps its XML: ``Local:name;address;size``."""

    filename: str
    address: int
    size: int


def parse_url(url: str) -> XmlLocation:
    """Parse the first XML URL register; only ``Local:`` URLs are supported."""
    if not url.lower().startswith("local:"):
        raise GenICamError(f"XML URL {url!r}: only 'Local:' URLs (XML in device memory) "
                           "are supported; load the XML from a file instead")
    try:
        name, address, size = url[6:].split(";")[:3]
        return XmlLocation(name.strip("/"), int(address, 16), int(size, 16))
    except ValueError:
        raise GenICamError(f"XML URL {url!r} is not 'Local:name;address;size' in hex") from None


def unpack_xml(location: XmlLocation, raw: bytes) -> bytes:
    """The XML text of a downloaded file, unzipping ``.zip`` files."""
    if location.filename.lower().endswith(".zip") or raw[:2] == b"PK":
        try:
            with zipfile.ZipFile(io.BytesIO(raw)) as archive:
                names = [n for n in archive.namelist() if n.lower().endswith(".xml")]
                if not names:
                    raise GenICamError(f"{location.filename}: zip holds no .xml file")
                return archive.read(names[0])
        except zipfile.BadZipFile as exc:
            raise GenICamError(f"{location.filename}: not a valid zip file ({exc})") from None
    return raw.rstrip(b"\0")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


class NodeMap:
    """The features of one device, read and written through a register port."""

    def __init__(self, xml: bytes, port: RegisterPort, *, source: str = "GenICam XML") -> None:
        try:
            root = ET.fromstring(xml)
        except ET.ParseError as exc:
            raise GenICamError(f"{source}: cannot parse the XML: {exc}") from None
        self.source = source
        self.port = port
        self.nodes: dict[str, ET.Element] = {}
        for element in root.iter():
            element.tag = _local(element.tag)
            name = element.get("Name")
            if name is not None and element.tag not in ("EnumEntry", "pVariable"):
                self.nodes.setdefault(name, element)
        self.vendor = root.get("VendorName", "")
        self.model = root.get("ModelName", "")

    # -- structure -----------------------------------------------------------
    def has(self, name: str) -> bool:
        """Whether the XML declares a node ``name``."""
        return name in self.nodes

    def _node(self, name: str) -> ET.Element:
        try:
            return self.nodes[name]
        except KeyError:
            raise GenICamError(f"{self.source}: the camera has no feature {name!r}") from None

    def _child(self, node: ET.Element, tag: str) -> str | None:
        child = node.find(tag)
        return child.text.strip() if child is not None and child.text else None

    def _number(self, node: ET.Element, tag: str) -> float | None:
        """``<Tag>`` as a constant or ``<pTag>`` as another node's value."""
        text = self._child(node, tag)
        if text is not None:
            return float(int(text, 0)) if text.lower().startswith("0x") else float(text)
        ref = self._child(node, "p" + tag)
        return self.get(ref) if ref is not None else None

    def _address(self, node: ET.Element) -> int:
        address = 0
        for child in node:
            if child.tag == "Address" and child.text:
                address += int(child.text.strip(), 0)
            elif child.tag == "pAddress" and child.text:
                address += int(self.get(child.text.strip()))
            elif child.tag == "pIndex" and child.text:
                offset = int(child.get("Offset", "0"), 0)
                address += offset * int(self.get(child.text.strip()))
        return address

    def limits(self, name: str) -> tuple[float | None, float | None]:
        """(min, max) of a numeric feature when the XML gives them."""
        node = self._node(name)
        return self._number(node, "Min"), self._number(node, "Max")

    def choices(self, name: str) -> dict[str, int]:
        """An Enumeration's entries: name → value."""
        node = self._node(name)
        out: dict[str, int] = {}
        for entry in node.findall("EnumEntry"):
            value = self._child(entry, "Value")
            if value is not None and entry.get("Name"):
                out[entry.get("Name", "")] = int(value, 0)
        return out

    # -- values -----------------------------------------------------------------
    def _variables(self, node: ET.Element) -> dict[str, float]:
        return {v.get("Name", ""): self.get((v.text or "").strip())
                for v in node.findall("pVariable")}

    def _read_reg(self, node: ET.Element) -> float:
        length = int(self._child(node, "Length") or "4", 0)
        address = self._address(node)
        big = (self._child(node, "Endianess") or "LittleEndian") == "BigEndian"
        if node.tag == "FloatReg":
            raw = self.port.read_memory(address, length)
            fmt = {4: "f", 8: "d"}.get(length)
            if fmt is None:
                raise GenICamError(f"{self.source}: FloatReg of {length} bytes")
            return float(struct.unpack((">" if big else "<") + fmt, raw)[0])
        if length == 4 and big:
            value = self.port.read_register(address)
        else:
            raw = self.port.read_memory(address, length)
            value = int.from_bytes(raw, "big" if big else "little")
        bits = 8 * length
        if node.tag == "MaskedIntReg":
            lsb, msb = self._bits(node, bits, big)
            value = (value >> lsb) & ((1 << (msb - lsb + 1)) - 1)
            bits = msb - lsb + 1
        if self._child(node, "Sign") == "Signed" and value >= 1 << (bits - 1):
            value -= 1 << bits
        return float(value)

    def _bits(self, node: ET.Element, bits: int, big: bool) -> tuple[int, int]:
        bit = self._child(node, "Bit")
        lsb_text = bit if bit is not None else self._child(node, "LSB")
        msb_text = bit if bit is not None else self._child(node, "MSB")
        lsb, msb = int(lsb_text or "0"), int(msb_text or "0")
        if big:       # big-endian registers number bits from the most significant
            lsb, msb = bits - 1 - lsb, bits - 1 - msb
        return min(lsb, msb), max(lsb, msb)

    def get(self, name: str) -> float:
        """The numeric value of a node (enumerations: the raw value)."""
        node = self._node(name)
        tag = node.tag
        if tag in ("IntReg", "MaskedIntReg", "FloatReg"):
            return self._read_reg(node)
        if tag in ("Integer", "Float", "Boolean", "Enumeration", "Command"):
            value = self._number(node, "Value")
            if value is None:
                raise GenICamError(f"{self.source}: feature {name!r} has no value node")
            if tag == "Boolean":
                on = self._child(node, "OnValue")
                return float(value == float(int(on, 0))) if on is not None else float(bool(value))
            return value
        if tag in ("Converter", "IntConverter"):
            variables = self._variables(node)
            variables["TO"] = self.get(self._child(node, "pValue") or "")
            return evaluate(self._child(node, "FormulaFrom") or "TO", variables)
        if tag in ("SwissKnife", "IntSwissKnife"):
            return evaluate(self._child(node, "Formula") or "0", self._variables(node))
        raise GenICamError(f"{self.source}: feature {name!r} is a {tag}, which this host "
                           "cannot read")

    def set(self, name: str, value: float) -> None:
        """Write a numeric value through the node's chain to its register."""
        node = self._node(name)
        tag = node.tag
        if tag in ("IntReg", "MaskedIntReg"):
            self._write_int(node, round(value))
        elif tag in ("Integer", "Float", "Enumeration", "Boolean"):
            ref = self._child(node, "pValue")
            if ref is None:
                raise GenICamError(f"{self.source}: feature {name!r} is a constant")
            if tag == "Boolean":
                on, off = self._child(node, "OnValue"), self._child(node, "OffValue")
                value = int(on or "1", 0) if value else int(off or "0", 0)
            self.set(ref, value)
        elif tag in ("Converter", "IntConverter"):
            variables = self._variables(node)
            variables["FROM"] = value
            self.set(self._child(node, "pValue") or "",
                     evaluate(self._child(node, "FormulaTo") or "FROM", variables))
        elif tag == "FloatReg":
            length = int(self._child(node, "Length") or "4", 0)
            big = (self._child(node, "Endianess") or "LittleEndian") == "BigEndian"
            raw = struct.pack((">" if big else "<") + ("f" if length == 4 else "d"), value)
            if length != 4:
                raise GenICamError(f"{self.source}: writing {length}-byte FloatReg {name!r}")
            self.port.write_register(self._address(node), int.from_bytes(raw, "big"))
        else:
            raise GenICamError(f"{self.source}: feature {name!r} is a {tag}, which this "
                               "host cannot write")

    def _write_int(self, node: ET.Element, value: int) -> None:
        length = int(self._child(node, "Length") or "4", 0)
        big = (self._child(node, "Endianess") or "LittleEndian") == "BigEndian"
        if length != 4:
            raise GenICamError(f"{self.source}: writing {length}-byte register "
                               f"{node.get('Name')!r} is not supported")
        address = self._address(node)
        if node.tag == "MaskedIntReg":
            lsb, msb = self._bits(node, 32, big)
            mask = ((1 << (msb - lsb + 1)) - 1) << lsb
            current = self.port.read_register(address)
            value = (current & ~mask) | ((value << lsb) & mask)
        if not big:
            value = int.from_bytes((value & 0xFFFFFFFF).to_bytes(4, "little"), "big")
        self.port.write_register(address, value)

    def get_enum(self, name: str) -> str:
        """An Enumeration's current entry name (its number when unnamed)."""
        raw = int(self.get(name))
        for entry, value in self.choices(name).items():
            if value == raw:
                return entry
        return str(raw)

    def set_enum(self, name: str, entry: str) -> None:
        """Set an Enumeration by entry name."""
        choices = self.choices(name)
        if entry not in choices:
            raise GenICamError(f"{self.source}: {name} has no entry {entry!r} "
                               f"(entries: {', '.join(choices)})")
        self.set(name, choices[entry])

    def execute(self, name: str) -> None:
        """Run a Command feature (write its CommandValue)."""
        node = self._node(name)
        if node.tag != "Command":
            raise GenICamError(f"{self.source}: {name!r} is a {node.tag}, not a Command")
        command_value = self._number(node, "CommandValue")
        ref = self._child(node, "pValue")
        if ref is None or command_value is None:
            raise GenICamError(f"{self.source}: command {name!r} has no register")
        self.set(ref, command_value)

    def get_string(self, name: str) -> str:
        """A StringReg's text."""
        node = self._node(name)
        if node.tag != "StringReg":
            raise GenICamError(f"{self.source}: {name!r} is a {node.tag}, not a StringReg")
        length = int(self._child(node, "Length") or "0", 0)
        raw = self.port.read_memory(self._address(node), length)
        return raw.split(b"\0", 1)[0].decode("utf-8", "replace")

    def first(self, *names: str) -> str | None:
        """The first of ``names`` the XML declares (cameras name features differently)."""
        return next((n for n in names if n in self.nodes), None)
