"""Correctness checks for ``--quick`` runs: CI runs every benchmark that way, so a benchmark that
stops measuring the right thing (or stops running) fails there instead of rotting quietly."""

from __future__ import annotations

import sys

MAX_SHOWN = 12  # one broken code path fails many checks alike; the first few say what broke


class Checks:
    """Collects failed checks, so one run reports all of them rather than the first."""

    def __init__(self, name: str):
        self.name = name
        self.passed = 0
        self.failures: list[str] = []

    def expect(self, ok: bool, failure: str) -> bool:
        if ok:
            self.passed += 1
        else:
            self.failures.append(failure)
        return ok

    def exit_code(self, announce_pass: bool = True) -> int:
        """0 when every check passed; otherwise prints each failure and returns 1."""
        if not self.failures:
            if announce_pass:
                print(f"\n{self.name}: all {self.passed} checks passed")
            return 0
        sys.stdout.flush()  # keep the failures after the table in a CI log that merges both streams
        print(f"\n{self.name}: {len(self.failures)} of {self.passed + len(self.failures)} checks FAILED:",
              file=sys.stderr)
        for failure in self.failures[:MAX_SHOWN]:
            print(f"  - {failure}", file=sys.stderr)
        if len(self.failures) > MAX_SHOWN:
            print(f"  ... and {len(self.failures) - MAX_SHOWN} more", file=sys.stderr)
        return 1
