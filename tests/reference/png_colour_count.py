"""Counts the pixels of a PNG close to a given colour (what a chart line of that colour drew).

Usage: png_colour_count.py FILE RRGGBB [TOLERANCE] -> prints the number of pixels whose every
channel is within TOLERANCE (default 24) of the colour. Uses png_nonwhite.read_png (zlib only).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from png_nonwhite import read_png  # noqa: E402


def main():
    path, colour = sys.argv[1], sys.argv[2]
    tolerance = int(sys.argv[3]) if len(sys.argv) > 3 else 24
    target = [int(colour[i:i + 2], 16) for i in (0, 2, 4)]
    _, _, channels, rows = read_png(path)
    count = 0
    for line in rows:
        for x in range(0, len(line), channels):
            if all(abs(line[x + c] - target[c]) <= tolerance for c in range(3)):
                count += 1
    print(count)


if __name__ == "__main__":
    main()
