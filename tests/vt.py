"""A small VT100 screen model for tests: feed it what a program writes to its
terminal, read back the characters (and their colours) a user would see.

It understands what prompt_toolkit draws with: cursor addressing and moves,
erasing, SGR colours, the alternate screen and mode switches (ignored).
"""

from __future__ import annotations

import re

_CSI = re.compile(r"\x1b\[([?>=]?)([0-9;]*)([@-~])")
_OSC = re.compile(r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
_ESC2 = re.compile(r"\x1b[()][0-9A-Za-z]|\x1b[=>78cMDE]")


class Screen:
    def __init__(self, rows: int = 24, cols: int = 80):
        self.rows, self.cols = rows, cols
        self.cells = [[(" ", "") for _ in range(cols)] for _ in range(rows)]
        self.row = self.col = 0
        self.sgr = ""
        self._pending = ""

    # -- reading
    def lines(self) -> list[str]:
        return ["".join(ch for ch, _ in r).rstrip() for r in self.cells]

    def text(self) -> str:
        return "\n".join(self.lines())

    def style_of(self, word: str) -> str | None:
        """The SGR parameters in force on the first character of `word` on screen."""
        for r, line in enumerate(self.lines()):
            c = line.find(word)
            if c >= 0:
                return self.cells[r][c][1]
        return None

    # -- writing
    def feed(self, data: str) -> None:
        data = self._pending + data
        self._pending = ""
        i = 0
        while i < len(data):
            ch = data[i]
            if ch == "\x1b":
                m = _CSI.match(data, i) or _OSC.match(data, i) or _ESC2.match(data, i)
                if m is None:
                    if len(data) - i < 32:  # an incomplete sequence: wait for the rest
                        self._pending = data[i:]
                        return
                    i += 1
                    continue
                if m.re is _CSI:
                    self._csi(m.group(1), m.group(2), m.group(3))
                i = m.end()
                continue
            if ch == "\r":
                self.col = 0
            elif ch == "\n":
                self.row = min(self.row + 1, self.rows - 1)
            elif ch == "\b":
                self.col = max(self.col - 1, 0)
            elif ch >= " ":
                if self.col >= self.cols:
                    self.col = self.cols - 1
                self.cells[self.row][self.col] = (ch, self.sgr)
                self.col += 1
            i += 1

    def _csi(self, private: str, params: str, final: str) -> None:
        if private:
            return  # mode switches: alternate screen, cursor visibility, paste mode
        nums = [int(p) if p else 0 for p in params.split(";")] if params else []
        n = nums[0] if nums and nums[0] else 1
        if final == "H" or final == "f":
            r = (nums[0] if len(nums) > 0 and nums[0] else 1) - 1
            c = (nums[1] if len(nums) > 1 and nums[1] else 1) - 1
            self.row, self.col = min(r, self.rows - 1), min(c, self.cols - 1)
        elif final == "A":
            self.row = max(self.row - n, 0)
        elif final == "B":
            self.row = min(self.row + n, self.rows - 1)
        elif final == "C":
            self.col = min(self.col + n, self.cols - 1)
        elif final == "D":
            self.col = max(self.col - n, 0)
        elif final == "G":
            self.col = min(n - 1, self.cols - 1)
        elif final == "J":
            mode = nums[0] if nums else 0
            if mode == 0:
                self._erase(self.row, self.col, self.cols)
                for r in range(self.row + 1, self.rows):
                    self._erase(r, 0, self.cols)
            elif mode in (2, 3):
                for r in range(self.rows):
                    self._erase(r, 0, self.cols)
        elif final == "K":
            mode = nums[0] if nums else 0
            if mode == 0:
                self._erase(self.row, self.col, self.cols)
            elif mode == 1:
                self._erase(self.row, 0, self.col + 1)
            else:
                self._erase(self.row, 0, self.cols)
        elif final == "m":
            self.sgr = "" if params in ("", "0") else params

    def _erase(self, row: int, start: int, end: int) -> None:
        for c in range(start, min(end, self.cols)):
            self.cells[row][c] = (" ", "")
