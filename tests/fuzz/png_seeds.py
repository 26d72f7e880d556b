"""Seed PNGs for fuzz_image: one small file of each colour type and bit depth
(palette with tRNS, gray+alpha, RGBA, 16-bit RGB, 1-bit gray, interlaced),
written with zlib alone so the fuzzer starts inside libpng's transforms."""
import struct
import sys
import zlib


def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)


ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def png(w, h, depth, ctype, row, extra=b"", interlace=0):
    """row(y) gives the bytes of row y (8-bit samples when interlaced)."""
    if not interlace:
        raw = b"".join(b"\0" + row(y) for y in range(h))
    else:  # Adam7: each pass is a small image of its own rows
        px = len(row(0)) // w
        raw = b""
        for x0, y0, dx, dy in ADAM7:
            cols = range(x0, w, dx)
            for y in range(y0, h, dy):
                if cols:
                    r = row(y)
                    raw += b"\0" + b"".join(r[x * px:(x + 1) * px] for x in cols)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, interlace)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


out = sys.argv[1]
seeds = {
    "rgba": png(4, 3, 8, 6, lambda y: b"".join(bytes((x * 60, y * 80, 7, x * 80)) for x in range(4))),
    "gray_alpha": png(3, 3, 8, 4, lambda y: b"".join(bytes((y * 90, x * 100)) for x in range(3))),
    "palette_trns": png(4, 2, 8, 3, lambda y: bytes(range(4)),
                        chunk(b"PLTE", bytes(range(12))) + chunk(b"tRNS", b"\0\x80")),
    "rgb16": png(2, 2, 16, 2, lambda y: b"".join(struct.pack(">HHH", 4096 * x, 30000, 65535) for x in range(2))),
    "gray1": png(9, 2, 1, 0, lambda y: b"\xaa\x80"),
    "interlaced": png(5, 5, 8, 2, lambda y: bytes(range(15)), interlace=1),
}
for name, data in seeds.items():
    open(f"{out}/seed_{name}.png", "wb").write(data)
