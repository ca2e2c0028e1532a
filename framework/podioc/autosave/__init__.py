"""Autosave: the building blocks with no event loop and no model, re-exported
here: the file format (:mod:`.fileformat`), the files on disk (:mod:`.store`)
and the settings (:mod:`.settings`); the start counter beside the file
(:mod:`.starts`); and the live service that restores and
saves an IOC's PVs and shows its status on health PVs (:mod:`.service`,
imported on its own: it needs the model and an event loop)."""

from .fileformat import FORMAT_VERSION, CorruptFile, SaveFile, decode, encode
from .settings import DEFAULT_DIR, ENV_DIR, AutosaveSettings, file_name_for
from .store import AutosaveStore, Loaded, StoreLocked

__all__ = ["DEFAULT_DIR", "ENV_DIR", "FORMAT_VERSION", "AutosaveSettings", "AutosaveStore",
           "CorruptFile", "Loaded", "SaveFile", "StoreLocked", "decode", "encode",
           "file_name_for"]
