"""Disk images crafted byte by byte, so format-inspection tests need no qemu-img.

Each builder lays out just the header fields oslo.utils' format inspector reads (and that qemu
would read), pads the rest with zeros and returns the whole file as bytes.
"""

from __future__ import annotations

import struct

SECTOR = 512

# --- qcow2 (docs/interop/qcow2.txt in qemu) -----------------------------------------------------
QCOW2_MAGIC = b"QFI\xfb"
QCOW2_V3_HEADER_LENGTH = 104
QCOW2_CLUSTER_BITS = 16
QCOW2_INCOMPATIBLE_FEATURES_OFFSET = 0x48
# Incompatible feature bit 2: the guest data lives in an external "data file".
QCOW2_EXTERNAL_DATA_FILE = 1 << 2
QCOW2_BACKING_FILE_NAME_OFFSET = 0x200


def qcow2(
    virtual_size: int,
    *,
    backing_file: str | None = None,
    external_data_file: bool = False,
    length: int = 4 * SECTOR,
) -> bytes:
    """A version 3 qcow2 header for a disk of ``virtual_size`` bytes, zero-padded to ``length``.

    ``backing_file`` stores the name after the header and points ``backing_file_offset`` and
    ``backing_file_size`` at it; ``external_data_file`` sets that incompatible feature bit.
    """
    name = (backing_file or "").encode()
    header = struct.pack(
        ">4sIQIIQIIQQIIQ",
        QCOW2_MAGIC,
        3,  # version
        QCOW2_BACKING_FILE_NAME_OFFSET if name else 0,  # backing_file_offset
        len(name),  # backing_file_size
        QCOW2_CLUSTER_BITS,
        virtual_size,
        0,  # crypt_method
        1,  # l1_size
        3 << QCOW2_CLUSTER_BITS,  # l1_table_offset
        1 << QCOW2_CLUSTER_BITS,  # refcount_table_offset
        1,  # refcount_table_clusters
        0,  # nb_snapshots
        0,  # snapshots_offset
    )
    assert len(header) == QCOW2_INCOMPATIBLE_FEATURES_OFFSET
    header += struct.pack(
        ">QQQII",
        QCOW2_EXTERNAL_DATA_FILE if external_data_file else 0,  # incompatible_features
        0,  # compatible_features
        0,  # autoclear_features
        4,  # refcount_order
        QCOW2_V3_HEADER_LENGTH,
    )
    assert len(header) == QCOW2_V3_HEADER_LENGTH
    image = bytearray(length)
    image[: len(header)] = header
    image[QCOW2_BACKING_FILE_NAME_OFFSET : QCOW2_BACKING_FILE_NAME_OFFSET + len(name)] = name
    return bytes(image)


# --- vmdk, monolithicSparse (VMware "Virtual Disk Format 1.1", hosted sparse extent) ------------
VMDK_MAGIC = b"KDMV"
VMDK_GRAIN_SECTORS = 128
VMDK_DESCRIPTOR_SECTOR = 1
VMDK_DESCRIPTOR_SECTORS = 1


def vmdk_monolithic_sparse(capacity_sectors: int, *, extent_file: str) -> bytes:
    """A monolithicSparse vmdk of ``capacity_sectors`` sectors whose descriptor names one
    sparse extent stored in ``extent_file`` (normally the vmdk itself)."""
    header = struct.pack(
        "<4sIIQQQQIQQQ?cccc",
        VMDK_MAGIC,
        1,  # version
        3,  # flags: valid newline test, redundant grain table
        capacity_sectors,
        VMDK_GRAIN_SECTORS,
        VMDK_DESCRIPTOR_SECTOR,
        VMDK_DESCRIPTOR_SECTORS,
        512,  # numGTEsPerGT
        0,  # rgdOffset
        4,  # gdOffset (sectors), not the "grain directory at the end" marker
        8,  # overHead (sectors)
        False,  # uncleanShutdown
        b"\n",
        b" ",
        b"\r",
        b"\n",
    )
    descriptor = (
        "# Disk DescriptorFile\n"
        "version=1\n"
        "CID=fffffffe\n"
        "parentCID=ffffffff\n"
        'createType="monolithicSparse"\n'
        "\n"
        "# Extent description\n"
        f'RW {capacity_sectors} SPARSE "{extent_file}"\n'
        "\n"
        "# The Disk Data Base\n"
        'ddb.virtualHWVersion = "4"\n'
        'ddb.adapterType = "ide"\n'
    ).encode("ascii")
    assert len(descriptor) < VMDK_DESCRIPTOR_SECTORS * SECTOR
    image = bytearray(8 * SECTOR)
    image[: len(header)] = header
    start = VMDK_DESCRIPTOR_SECTOR * SECTOR
    image[start : start + len(descriptor)] = descriptor
    return bytes(image)


# --- raw -----------------------------------------------------------------------------------------


def raw(length: int = 4 * SECTOR) -> bytes:
    """Bytes no inspector claims: a repeating 0..250 ramp (no magic, no MBR boot signature)."""
    return bytes(index % 251 for index in range(length))


# --- MBR-partitioned raw disk ------------------------------------------------------------------

MBR_PARTITION_TABLE = 446
MBR_LINUX_PARTITION = 0x83


def mbr_disk(length: int = 4 * SECTOR) -> bytes:
    """A raw disk with a classic MBR: one Linux partition from LBA 1 and the boot signature.

    The format inspector calls any MBR ``gpt``; its safety checks pass for this one.
    """
    image = bytearray(raw(length))
    image[MBR_PARTITION_TABLE : MBR_PARTITION_TABLE + 64] = bytes(64)
    entry = struct.pack(
        "<B3BB3BII", 0x00, 0, 2, 0, MBR_LINUX_PARTITION, 0, 0, 0, 1, length // SECTOR - 1
    )
    image[MBR_PARTITION_TABLE : MBR_PARTITION_TABLE + 16] = entry
    image[510:512] = b"\x55\xaa"
    return bytes(image)
