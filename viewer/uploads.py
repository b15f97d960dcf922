"""Speech uploads: refuse early, decode in memory, never trust the client's file name.

viser's upload button hands over the whole file only when every part has
arrived; its ``FileTransferStartUpload`` message, which comes first, already
declares ``size_bytes``. :func:`install_size_guard` registers one more handler
for that message on a client's connection (viser's own ``register_handler``,
which keeps a list of handlers per message type): for a file over the limit it
drops the transfer's state at once — the parts that follow find no transfer
and are discarded without being stored — acknowledges the transfer as finished
(so the browser's upload button becomes usable again) and tells the user.
Nothing is allocated for a refused file.

Accepted files are decoded from the bytes in memory (``talk.audio.load_audio``
on bytes: soundfile, else PyAV on a ``BytesIO``); the client's file name is
only a label in messages, never a path.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePosixPath, PureWindowsPath

import numpy as np
from viser import _messages

from splattalk.errors import SplattalkError
from splattalk.talk.audio import load_audio

EXTENSIONS = (".wav", ".mp3", ".m4a", ".aac", ".ogg", ".oga", ".opus", ".flac", ".webm")
MIME_ACCEPT = "audio/*," + ",".join(EXTENSIONS)
"""What the browser's file picker offers (a hint only: the server checks again)."""


def display_name(filename: str) -> str:
    """A safe label for a client-supplied file name: its last component, printable, at most 80 characters."""
    name = str(filename or "")
    name = PureWindowsPath(PurePosixPath(name).name).name  # strips "../", "/abs/", "C:\\…"
    name = "".join(c for c in name if c.isprintable() and c not in "<>\"'`&")
    return (name if name.strip(". ") else "upload")[:80]


def check_declared(filename: str, size_bytes: int, max_bytes: int) -> None:
    """Refuse an upload from what the browser declares, before any byte of it is kept."""
    label = display_name(filename)
    if size_bytes <= 0:
        raise SplattalkError(f"{label} is empty (0 bytes): choose a speech recording")
    if size_bytes > max_bytes:
        raise SplattalkError(
            f"{label} is {size_bytes / 2**20:.0f} MiB; uploads are limited to {max_bytes / 2**20:.0f} MiB. "
            "Cut the recording or compress it (mp3/ogg) and try again."
        )
    suffix = PurePosixPath(label).suffix.lower()
    if suffix and suffix not in EXTENSIONS:
        raise SplattalkError(
            f"{label}: {suffix} files are not accepted; upload speech as {', '.join(e[1:] for e in EXTENSIONS)}"
        )


def decode_upload(filename: str, content: bytes, max_bytes: int, max_seconds: float) -> np.ndarray:
    """The uploaded speech as float32 16 kHz mono ``[S]``; a :class:`SplattalkError` for anything else."""
    check_declared(filename, len(content), max_bytes)
    return load_audio(content, max_seconds=max_seconds, max_bytes=max_bytes, name=display_name(filename))


def install_size_guard(client, max_bytes: int, refuse: Callable[[str], None]) -> None:
    """Refuse a client's oversized uploads when they start (see the module docstring).

    ``refuse(message)`` tells the user. Works with viser 1.x's upload protocol
    (``FileTransferStartUpload`` / ``FileTransferPart`` / ``FileTransferPartAck``).
    """
    connection = client._websock_connection
    gui_api = client.gui

    def on_start(client_id, message) -> None:
        try:
            check_declared(message.filename, int(message.size_bytes), max_bytes)
        except SplattalkError as err:
            if int(message.size_bytes) <= 0:
                return  # viser completes 0-byte files itself; the upload handler reports them
            gui_api._current_file_upload_states.pop(message.transfer_uuid, None)
            connection.queue_message(
                _messages.FileTransferPartAck(
                    source_component_uuid=message.source_component_uuid,
                    transfer_uuid=message.transfer_uuid,
                    transferred_bytes=int(message.size_bytes),
                    total_bytes=int(message.size_bytes),
                )
            )
            refuse(str(err))

    connection.register_handler(_messages.FileTransferStartUpload, on_start)
